/** What crosses between the trainer, the rollout workflow and the rollout workers: small values only. */
import type { Sample } from '../model/sample';
import type { RolloutBatch } from '../rl/rollout';
import type { WeightsRef } from '../storage/weights';

export interface ShardInput {
  weights: WeightsRef;
  /** The trainer's tfjs backend: another backend would sample other bits. */
  backend: string;
  batch: RolloutBatch;
}

export interface RolloutStepInput extends ShardInput {
  /** Prompt ranges of `batch`, one shard activity each. */
  shards: { first: number; count: number }[];
}

/** A shard's samples inline, or the key of the object holding them. */
export interface ShardResult {
  first: number;
  samples?: Sample[];
  key?: string;
  /** Seconds the worker spent sampling (model load and upload excluded). */
  seconds: number;
}

/** The rollout queue's activities (activities/rollout.ts implements them). */
export interface RolloutActivities {
  rolloutShard(input: ShardInput): Promise<ShardResult>;
}
