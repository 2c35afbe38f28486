/** All activities, built once per worker process around shared clients. */
import type { Client } from '@temporalio/client';
import type { TemporalConfig } from '../config/connection';
import type { Grants } from '../util/grants';
import { connectClient } from '../infra/temporal';
import type { CheckpointStore } from '../storage/checkpoints';
import { ModelCache } from '../model/cache';
import { readWeights } from '../storage/weights';
import { CheckpointCache } from './cache';
import { campaignActivities } from './campaign';
import { stageContext } from './context';
import { promotionActivities } from './promotion';
import { proofActivities } from './proof';
import { reproductionActivities } from './reproduce';
import { rolloutActivities } from './rollout';
import { scalingActivities } from './scaling';

export interface ActivityDeps {
  store: CheckpointStore;
  backend: string;
  /** Where a trainer starts its rollout workflows (rl.rollout.mode workers); connected on first use. */
  temporal?: TemporalConfig;
  /** What a campaign config may make this worker read or send (util/grants.ts). */
  grants: Grants;
}

export function createActivities(deps: ActivityDeps) {
  // The last few checkpoints loaded, shared by training and evaluation activities.
  const cache = new CheckpointCache(deps.store, 4);
  // Published models (rollout shards, scaling points), kept by sha256.
  const models = new ModelCache((ref) => readWeights(deps.store, ref));
  let client: Promise<Client> | undefined;
  const temporal = () => {
    if (!deps.temporal) throw new Error('rl.rollout.mode workers: this worker has no Temporal connection settings');
    return (client ??= connectClient(deps.temporal));
  };
  const ctx = stageContext({ store: deps.store, backend: deps.backend, cache, temporal, grants: deps.grants });
  return {
    ...proofActivities(deps.store, deps.backend),
    ...campaignActivities(ctx),
    ...rolloutActivities(deps.store, deps.backend, models),
    ...scalingActivities(ctx, models),
    ...promotionActivities(deps.store),
    ...reproductionActivities(deps.store),
  };
}
export type Activities = ReturnType<typeof createActivities>;
