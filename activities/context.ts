/**
 * What every campaign stage's activities share: the checkpoint store and cache, this worker's
 * backend and grants, the policy builder, and small helpers (heartbeats, reading a checkpoint's
 * JSON object, the config field a problem space exhausts). Built once per worker process.
 */
import type { Client } from '@temporalio/client';
import type { CampaignConfig } from '../config/campaign';
import type { Grants, WorkerAccess } from '../util/grants';
import type { ModelConfig } from '../model/config';
import type { LlamaConfig } from '../model/llama-config';
import type { TrainingState } from '../model/state';
import type { CheckpointStore } from '../storage/checkpoints';
import type { CheckpointRef } from '../storage/manifest';
import { loadTaskData } from '../config/task-file';
import type { JsonlDataset } from '../tasks/jsonl';
import { ExhaustedError } from '../tasks/types';
import { ConfigError } from '../util/errors';
import { Lru } from '../util/lru';
import type { CheckpointCache } from './cache';
import { Policies } from './policies';
import { activityScope } from './scope';

export interface StageDeps {
  store: CheckpointStore;
  backend: string;
  cache: CheckpointCache;
  temporal: () => Promise<Client>;
  grants: Grants;
}

export interface StageContext {
  store: CheckpointStore;
  backend: string;
  cache: CheckpointCache;
  /** What a config may make this worker read or send: its grants, never the config's say (util/grants.ts). */
  access: WorkerAccess;
  policies: Policies;
  /** Where a trainer starts its rollout workflows (rl.rollout.mode workers); connected on first use. */
  temporal: () => Promise<Client>;
  /** The training state in a checkpoint of either family. */
  stateOf(ref: CheckpointRef): Promise<TrainingState<ModelConfig | LlamaConfig>>;
  /**
   * The campaign's jsonl task file, loaded (undefined for a generated task), to pass to what draws
   * its problems: read within the grants and checked against its pinned sha256, once per worker.
   */
  loadTask(config: CampaignConfig): Promise<JsonlDataset | undefined>;
}

export function stageContext({ store, backend, cache, temporal, grants }: StageDeps): StageContext {
  const access: WorkerAccess = { grants, checkpointBucket: store.bucket };
  // The last few task files this worker loaded, by sha256.
  const files = new Lru<JsonlDataset>(4);
  return {
    store,
    backend,
    cache,
    access,
    policies: new Policies(access, store.client),
    temporal,
    stateOf: (ref) => cache.anyState(ref),
    loadTask: (config) => loadTaskData(config.task, store.client, access, files),
  };
}

export const utf8 = (s: string) => new TextEncoder().encode(s);

export const heartbeat = (details: unknown) => activityScope().heartbeat(details);

/** A JSON object of a checkpoint (through the cache). */
export async function checkpointJson<T>(cache: CheckpointCache, ref: CheckpointRef, name: string): Promise<T> {
  return JSON.parse(Buffer.from((await cache.get(ref))[name]).toString('utf8')) as T;
}

/** Runs `f`; a problem space it exhausts is reported as the config field that asked too much. */
export async function namingField<T>(field: string, f: () => T | Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    if (e instanceof ExhaustedError) throw new ConfigError(`${field}: ${e.message}`);
    throw e;
  }
}
