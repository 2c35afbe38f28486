/**
 * One RL step at K = 4, 16, 64 samples per prompt (B = 8 countdown prompts) on a small model
 * (the quick preset's shape, random init), split into sampling / scoring / update seconds, with
 * the tokens/s of sampling and of the update. A random model scores no reward, so flat groups are
 * kept (their KL-only advantages still drive a full update) and M = min(K, 16) samples per prompt
 * are trained on. One warm-up step first; then one timed step per K. Then K = 64 once more (after
 * a warm-up step) with its shards sampled, and the anchor's micro-batches scored, by 2 sampler
 * processes of one TensorFlow thread each (rl.rollout.processes 2): rl_*_seconds_k64_processes2.
 */
import { initBackend } from '../model/backend';
import { modelConfig } from '../model/config';
import { Transformer } from '../model/transformer';
import { rlConfig, rolloutShards } from '../rl/config';
import { poolRollouts, SamplerPool } from '../rl/sampler-pool';
import { rlStep } from '../rl/step';
import { sampleProblems } from '../tasks/stream';
import { AdamW } from '../training/adamw';
import { Prng } from '../util/prng';
import type { Bench } from './metric';

const KS = [4, 16, 64];
const MODEL = modelConfig({ contextLength: 192, dModel: 96, nLayers: 3, nHeads: 4, dFF: 384 });
const B = 8;
const MAX_NEW = 128;
const PARTS = ['step_seconds', 'sampling_seconds', 'scoring_seconds', 'update_seconds', 'sampling_tokens_per_s', 'update_tokens_per_s'];

export const rlBench: Bench = {
  metrics: [
    ...KS.flatMap((k) => PARTS.map((p) => `rl_${p}_k${k}`)),
    'rl_step_seconds_k64_processes2',
    'rl_sampling_seconds_k64_processes2',
    'rl_scoring_seconds_k64_processes2',
  ],
  async run(emit) {
    const { name: backend } = await initBackend();
    const problems = sampleProblems(B, { task: 'countdown', split: 'train', pool: 'rl', seed: 1, difficulty: 3 });
    const policy = new Transformer(MODEL, new Prng(1));
    const anchor = policy.clone();
    const rng = new Prng(2);
    const configOf = (K: number) =>
      rlConfig({ samplesPerPrompt: K, promptsPerStep: B, updateSamples: Math.min(K, 16), maxNewTokens: MAX_NEW, dropZeroVariance: false });
    const step = (K: number, optimizer: AdamW, pool?: SamplerPool) => {
      const config = configOf(K);
      const rollouts = pool && poolRollouts(pool, policy, rolloutShards(config));
      return rlStep({ policy, anchor, optimizer, problems, config, lr: config.lr, rng, rollouts, scoring: pool?.score });
    };
    const optimizer = new AdamW(policy.variables, policy.names, rlConfig().optimizer);
    await step(4, optimizer);
    for (const K of KS) {
      const m = await step(K, optimizer);
      const ctx = {
        backend,
        params: policy.paramCount(),
        model: 'L3 D96 T192',
        prompts: B,
        samples_per_prompt: K,
        update_samples: Math.min(K, 16),
        max_new_tokens: MAX_NEW,
        sampled_tokens: m.sampledTokens,
        update_positions: m.updatePositions,
        peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024),
      };
      const total = m.samplingSeconds + m.scoringSeconds + m.updateSeconds;
      emit({ metric: `rl_step_seconds_k${K}`, value: total, unit: 's', ...ctx });
      emit({ metric: `rl_sampling_seconds_k${K}`, value: m.samplingSeconds, unit: 's', ...ctx });
      emit({ metric: `rl_scoring_seconds_k${K}`, value: m.scoringSeconds, unit: 's', ...ctx });
      emit({ metric: `rl_update_seconds_k${K}`, value: m.updateSeconds, unit: 's', ...ctx });
      emit({ metric: `rl_sampling_tokens_per_s_k${K}`, value: m.samplingTokensPerS, unit: 'tokens/s', ...ctx });
      emit({ metric: `rl_update_tokens_per_s_k${K}`, value: m.updateTokensPerS, unit: 'tokens/s', ...ctx });
    }
    const pool = new SamplerPool(2, backend);
    try {
      await step(64, optimizer, pool); // starts the processes and warms them up at this step's shapes
      const m = await step(64, optimizer, pool);
      const ctx = {
        backend,
        model: 'L3 D96 T192',
        prompts: B,
        samples_per_prompt: 64,
        processes: 2,
        shards: rolloutShards(configOf(64)).length,
      };
      emit({ metric: 'rl_step_seconds_k64_processes2', value: m.samplingSeconds + m.scoringSeconds + m.updateSeconds, unit: 's', ...ctx });
      emit({ metric: 'rl_sampling_seconds_k64_processes2', value: m.samplingSeconds, unit: 's', ...ctx, sampled_tokens: m.sampledTokens });
      emit({ metric: 'rl_scoring_seconds_k64_processes2', value: m.scoringSeconds, unit: 's', ...ctx });
    } finally {
      pool.close();
    }
    [policy, anchor, optimizer].forEach((x) => x.dispose());
  },
};
