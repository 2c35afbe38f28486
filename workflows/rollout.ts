/**
 * One RL step's rollouts fanned out: a shard activity per group of prompts on the rollout queue,
 * gathered in order. Started by the trainer (activities/rollout.ts workerRollouts) with an id
 * derived from the weights and the step's seed, so a retried trainer attaches to the same run.
 */
import { proxyActivities } from '@temporalio/workflow';
import type { RolloutActivities, RolloutStepInput, ShardResult } from '../activities/rollout';
import { shardBatch } from '../rl/config';
import { QUEUES } from './queues';
import { ACTIVITY_RETRY } from './retry';

// A killed rollout worker stops heartbeating: after 20 s its shard goes to another worker.
const rollout = proxyActivities<RolloutActivities>({
  taskQueue: QUEUES.rollout,
  startToCloseTimeout: '1h',
  heartbeatTimeout: '20s',
  retry: ACTIVITY_RETRY,
});

export async function rolloutWorkflow(input: RolloutStepInput): Promise<ShardResult[]> {
  const { weights, backend, batch } = input;
  return Promise.all(input.shards.map((shard) => rollout.rolloutShard({ weights, backend, batch: shardBatch(batch, shard) })));
}
