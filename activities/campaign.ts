/**
 * Campaign activities, one module per stage: thin adapters that resolve checkpoint references,
 * call the training and evaluation layers, heartbeat progress and commit results. Every one is
 * safe to repeat: inputs and seeds fix the content, and a repeated commit of identical content is
 * a no-op. Checkpoint names and config hashes come from rules/checkpoints, the stages' decisions
 * from rules/stages.
 */
import { anchorActivities } from './anchor';
import type { StageContext } from './context';
import { evaluationActivities } from './evaluate';
import { filterActivities } from './filter';
import { rlEpochActivities } from './rl-epoch';
import { sftActivities } from './sft';
import { synthesisActivities } from './synthesize';
import type { CampaignActivities } from '../contracts/campaign';

export function campaignActivities(ctx: StageContext): CampaignActivities {
  return {
    ...synthesisActivities(ctx),
    ...sftActivities(ctx),
    ...filterActivities(ctx),
    ...rlEpochActivities(ctx),
    ...anchorActivities(ctx),
    ...evaluationActivities(ctx),
  };
}
