/** All activities, built once per worker process around shared clients. */
import type { CheckpointStore } from '../storage/checkpoints';
import { CheckpointCache } from './cache';
import { campaignActivities } from './campaign';
import { promotionActivities } from './promotion';
import { proofActivities } from './proof';
import { scalingActivities } from './scaling';

export interface ActivityDeps {
  store: CheckpointStore;
  backend: string;
}

export function createActivities(deps: ActivityDeps) {
  // The last few checkpoints loaded, shared by training and evaluation activities.
  const cache = new CheckpointCache(deps.store, 4);
  return {
    ...proofActivities(deps.store, deps.backend),
    ...campaignActivities(deps.store, deps.backend, cache),
    ...scalingActivities(deps.store, cache),
    ...promotionActivities(deps.store),
  };
}
export type Activities = ReturnType<typeof createActivities>;
