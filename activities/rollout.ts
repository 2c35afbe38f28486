/**
 * Rollouts on rollout workers. The trainer publishes the policy's weights once per step
 * (storage/weights), starts the step's rollout workflow and gathers the shards; a rollout worker
 * samples one shard with the published weights and returns its samples inline, or as an object
 * in S3 when they are too big for workflow history. The shard's rows draw from their own streams
 * (rl/rollout), so a retried or re-assigned shard gives the same bits.
 */
import { randomBytes } from 'node:crypto';
import type { Client } from '@temporalio/client';
import type { Sample } from '../model/sample';
import type { Transformer } from '../model/transformer';
import { sampleRollouts, type Rollouts } from '../rl/rollout';
import { ROLLOUTS_PREFIX, type CheckpointStore } from '../storage/checkpoints';
import type { ModelCache } from '../model/cache';
import { publishWeights, releaseWeights } from '../storage/weights';
import { ConfigError } from '../util/errors';
import { hashOf } from '../util/hash';
import { startRolloutStep } from '../client/rollouts';
import type { RolloutActivities, RolloutStepInput, ShardInput, ShardResult } from '../contracts/rollout';
import { activityScope } from './scope';

/** Shards whose samples take more JSON than this go to S3 (history events stay small). */
const INLINE_LIMIT = 32 * 1024;

export function rolloutActivities(store: CheckpointStore, backend: string, models: ModelCache): RolloutActivities {
  return {
    async rolloutShard(input: ShardInput): Promise<ShardResult> {
      if (input.backend !== backend)
        throw new ConfigError(
          `rollout worker runs the ${backend} backend, the trainer ${input.backend}: their samples would differ; run rollout workers on the trainer's backend`,
        );
      const scope = activityScope();
      const beat = setInterval(() => scope.heartbeat({ first: input.batch.first }), 5000);
      try {
        const model = await models.get(input.weights);
        const t0 = performance.now();
        const samples = await sampleRollouts(model, input.batch);
        const seconds = (performance.now() - t0) / 1000;
        const json = JSON.stringify(samples);
        if (json.length <= INLINE_LIMIT) return { first: input.batch.first, samples, seconds };
        const key = `${ROLLOUTS_PREFIX}/${input.weights.sha256}/${hashOf(input.batch)}.json`;
        await store.putOnce(key, json, 'application/json');
        return { first: input.batch.first, key, seconds };
      } finally {
        clearInterval(beat);
      }
    },
  };
}

export interface WorkerRolloutsOptions {
  client: () => Promise<Client>;
  store: CheckpointStore;
  backend: string;
  campaignId: string;
  policy: Transformer;
  shards: RolloutStepInput['shards'];
  /** Sees each step's shard results (their sampling seconds), e.g. for benchmarks. */
  onShards?: (shards: ShardResult[]) => void;
}

/**
 * The trainer's side: each step publishes the policy, runs the step's rollout workflow and gathers
 * the shards in order. The step's working objects are removed once gathered (gc removes those of a
 * crashed step): its stored shards, and its hold on the weights, which are deleted only when no other
 * run (another campaign with the same bits, another attempt of this one) holds them.
 */
export function workerRollouts(o: WorkerRolloutsOptions): Rollouts {
  return async (batch) => {
    const scope = activityScope();
    // One holder per step and attempt: a stale attempt releasing its hold leaves the current attempt's.
    const holder = `${o.campaignId}.${randomBytes(6).toString('hex')}`;
    const weights = await publishWeights(o.store, { config: o.policy.config, weights: o.policy.getWeights() }, holder);
    // A refill batch (rl.dynamicSampling) may hold fewer prompts than a step: only the shards it reaches.
    const shards = o.shards.filter((s) => s.first < batch.prompts.length);
    const input: RolloutStepInput = { weights, backend: o.backend, batch, shards };
    const workflowId = `${o.campaignId}-rollouts-${hashOf(input).slice(0, 16)}`;
    // A retried trainer attaches to the step's running workflow; one that closed (its objects may be
    // gone) runs again, to the same bits.
    const handle = await startRolloutStep(await o.client(), workflowId, input);
    // The trainer's activity heartbeats while it waits; a cancelled trainer cancels its rollouts.
    const beat = setInterval(() => scope.keepAlive(), 5000);
    const cancel = () => void handle.cancel().catch(() => undefined);
    scope.signal.addEventListener('abort', cancel, { once: true });
    try {
      const shards = await handle.result();
      o.onShards?.(shards);
      const keys = shards.flatMap((s) => (s.key ? [s.key] : []));
      const samples: Sample[] = [];
      for (const s of shards) {
        const part = s.samples ?? (await o.store.getJson<Sample[]>(s.key!));
        if (!part) throw new Error(`rollout shard at prompt ${s.first}: its object ${s.key} is gone`);
        samples.push(...part);
      }
      await o.store.deleteKeys(keys);
      return samples;
    } finally {
      clearInterval(beat);
      scope.signal.removeEventListener('abort', cancel);
      // Gathered, failed or cancelled, this step no longer reads them. A release that fails leaves a
      // hold that gc finds stale later: not worth failing the step for.
      await releaseWeights(o.store, weights, holder).catch(() => undefined);
    }
  };
}
