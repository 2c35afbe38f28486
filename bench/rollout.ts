/**
 * Rollouts on rollout workers (rl.rollout.mode workers), on the local stack:
 * - rollout_scaleout_speedup_2: RL step seconds with 1 rollout worker process over the seconds
 *   with 2, each worker pinned to one core (taskset) and one TensorFlow thread, so a 2-core
 *   machine shows the scaling; the trainer is this process;
 * - rollout_dispatch_overhead_fraction: with 2 workers, the step time not covered by sampling
 *   (the workers' sampling seconds over the worker count), scoring or update, over step time:
 *   weight publishing and loading, workflow and activity dispatch, shard transfer, imbalance;
 * - weight_publish_seconds_<preset>: encoding, hashing and uploading a model's weights once.
 */
import { workerRollouts } from '../activities/rollout';
import type { ShardResult } from '../contracts/rollout';
import { runInScope } from '../activities/scope';
import { loadConnection, loadStack } from '../config/connection';
import { resolveConfig } from '../config/presets';
import { stackUp } from '../infra/stack';
import { connectClient } from '../infra/temporal';
import { initBackend } from '../model/backend';
import { Transformer } from '../model/transformer';
import { rlConfig, rolloutShards } from '../rl/config';
import { rlStep } from '../rl/step';
import { CheckpointStore } from '../storage/checkpoints';
import { publishWeights, releaseWeights } from '../storage/weights';
import { sampleProblems } from '../tasks/stream';
import { AdamW } from '../training/adamw';
import { Prng } from '../util/prng';
import type { Bench } from './metric';
import { spawnWorker } from './worker';

const B = 4;
const K = 32;
const STEPS = 2;

const noScope = { heartbeatDetails: undefined, heartbeat: () => undefined, signal: new AbortController().signal, log: () => undefined };

export const rolloutBench: Bench = {
  metrics: ['rollout_scaleout_speedup_2', 'rollout_dispatch_overhead_fraction', 'weight_publish_seconds'],
  async run(emit) {
    await stackUp(loadStack(), (l) => console.error(`[stack] ${l}`));
    const conn = loadConnection();
    const store = new CheckpointStore(conn.s3);
    const client = await connectClient(conn.temporal);
    const { name: backend } = await initBackend();
    try {
      for (const preset of ['quick', 'full']) {
        const seconds: number[] = [];
        let bytes = 0;
        for (let i = 0; i < 3; i++) {
          const model = new Transformer(resolveConfig({ preset }).model, new Prng(100 + i));
          const t0 = performance.now();
          const ref = await publishWeights(store, { config: model.config, weights: model.getWeights() }, 'bench');
          seconds.push((performance.now() - t0) / 1000);
          bytes = ref.bytes;
          await releaseWeights(store, ref, 'bench');
          model.dispose();
        }
        const value = seconds.sort((a, b) => a - b)[1];
        emit({ metric: `weight_publish_seconds_${preset}`, value, unit: 's', backend, preset, bytes, runs: 3, statistic: 'median' });
      }

      const quick = resolveConfig({ preset: 'quick' });
      const config = rlConfig({
        ...quick.rl,
        promptsPerStep: B,
        samplesPerPrompt: K,
        sampleBatch: K,
        updateSamples: 16,
        maxNewTokens: 96,
        dropZeroVariance: false,
        rollout: { mode: 'workers', shardPrompts: 1 },
      });
      const problems = sampleProblems(B, { task: 'countdown', split: 'train', pool: 'rl', seed: 1, difficulty: 3 });
      const stepSeconds: Record<number, number[]> = {};
      const samplingSeconds: Record<number, number[]> = {};
      let overhead = NaN;
      for (const n of [1, 2]) {
        const workers = await Promise.all(Array.from({ length: n }, (_, i) => spawnWorker('rollout', i)));
        const policy = new Transformer(quick.model, new Prng(1));
        const anchor = policy.clone();
        const optimizer = new AdamW(policy.variables, policy.names, config.optimizer);
        const rng = new Prng(2);
        let shards: ShardResult[] = [];
        const rollouts = workerRollouts({
          client: async () => client,
          store,
          backend,
          campaignId: `bench-rollout-${n}-${Date.now().toString(36)}`,
          policy,
          shards: rolloutShards(config),
          onShards: (s) => (shards = s),
        });
        const parts: number[] = [];
        try {
          for (let s = 0; s <= STEPS; s++) {
            const t0 = performance.now();
            const m = await runInScope(noScope, () =>
              rlStep({ policy, anchor, optimizer, problems, config, lr: config.lr, rng, rollouts }),
            );
            const step = (performance.now() - t0) / 1000;
            console.error(`[bench] ${n} rollout worker(s), step ${s}: ${step.toFixed(2)} s (sampling ${m.samplingSeconds.toFixed(2)} s)`);
            if (s === 0) continue; // warm-up: workers load their backend's kernels
            (stepSeconds[n] ??= []).push(step);
            (samplingSeconds[n] ??= []).push(m.samplingSeconds);
            const sampling = shards.reduce((t, r) => t + r.seconds, 0) / n;
            parts.push((step - sampling - m.scoringSeconds - m.updateSeconds) / step);
          }
        } finally {
          workers.forEach((w) => w.kill('SIGTERM'));
          [policy, anchor, optimizer].forEach((x) => x.dispose());
        }
        if (n === 2) overhead = parts.reduce((a, b) => a + b, 0) / parts.length;
      }
      const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
      const ctx = {
        backend,
        model: 'quick',
        prompts: B,
        samples_per_prompt: K,
        shards: B,
        steps: STEPS,
        pinned: 'one core and one TF thread per worker',
      };
      emit({
        metric: 'rollout_scaleout_speedup_2',
        value: mean(stepSeconds[1]) / mean(stepSeconds[2]),
        unit: 'x',
        target: 1.7,
        step_s_1_worker: mean(stepSeconds[1]),
        step_s_2_workers: mean(stepSeconds[2]),
        // The sampling phase alone (publish, dispatch, sampling, gathering): the part that scales.
        sampling_s_1_worker: mean(samplingSeconds[1]),
        sampling_s_2_workers: mean(samplingSeconds[2]),
        ...ctx,
      });
      emit({ metric: 'rollout_dispatch_overhead_fraction', value: overhead, unit: 'fraction', target: 0.05, workers: 2, ...ctx });
    } finally {
      store.close();
      await client.connection.close();
    }
  },
};
