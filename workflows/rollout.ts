/**
 * One RL step's rollouts fanned out: a shard activity per group of prompts on the rollout queue,
 * gathered in order. Started by the trainer (activities/rollout.ts workerRollouts) with an id
 * derived from the weights and the step's seed, so a retried trainer attaches to the same run.
 */
import { proxyActivities } from '@temporalio/workflow';
import { z } from 'zod';
import type { RolloutActivities, RolloutStepInput, ShardResult } from '../contracts/rollout';
import { shardBatch } from '../rl/config';
import { QUEUES } from '../contracts/queues';
import { ACTIVITY_RETRY } from './retry';
import { parseOrFail } from './validate';

// A killed rollout worker stops heartbeating: after 20 s its shard goes to another worker.
const rollout = proxyActivities<RolloutActivities>({
  taskQueue: QUEUES.rollout,
  startToCloseTimeout: '1h',
  heartbeatTimeout: '20s',
  retry: ACTIVITY_RETRY,
});

const int = z.number().int();

/** The step's input as the trainer builds it (activities/rollout.ts workerRollouts, rl/step.ts). */
const RolloutStepInputSchema = z.looseObject({
  weights: z.looseObject({ sha256: z.string().min(1), bytes: int.min(0) }),
  backend: z.string().min(1),
  batch: z.looseObject({
    prompts: z.array(z.array(int)),
    first: int.min(0),
    samplesPerPrompt: int.positive(),
    stepSeed: int,
    sampleBatch: int.positive(),
    sampling: z.looseObject({ maxNewTokens: int.positive(), temperature: z.number().positive(), topP: z.number(), minP: z.number() }),
  }),
  shards: z.array(z.looseObject({ first: int.min(0), count: int.positive() })),
});

export async function rolloutWorkflow(input: RolloutStepInput): Promise<ShardResult[]> {
  // A refused input fails the workflow (not its task, which Temporal would retry forever), naming the fields.
  parseOrFail(RolloutStepInputSchema, input, 'rollout step input');
  const { weights, backend, batch } = input;
  return Promise.all(input.shards.map((shard) => rollout.rolloutShard({ weights, backend, batch: shardBatch(batch, shard) })));
}
