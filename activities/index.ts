/** All activities, built once per worker process around shared clients. */
import type { CheckpointStore } from '../storage/checkpoints';
import { campaignActivities } from './campaign';
import { promotionActivities } from './promotion';
import { proofActivities } from './proof';

export interface ActivityDeps {
  store: CheckpointStore;
  backend: string;
}

export function createActivities(deps: ActivityDeps) {
  return {
    ...proofActivities(deps.store, deps.backend),
    ...campaignActivities(deps.store, deps.backend),
    ...promotionActivities(deps.store),
  };
}
export type Activities = ReturnType<typeof createActivities>;
