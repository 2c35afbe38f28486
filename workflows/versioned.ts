// What a versioned worker bundles (workers/build.ts): every workflow, each with its versioning
// behaviour, which the server accepts only from a worker with a deployment version. A campaign lives
// for days to months and its code changes under it are guarded by patched(), so it moves to the
// deployment's current build (Auto-Upgrade); the others are short and finish on the build that
// started them (Pinned).
import { setWorkflowOptions } from '@temporalio/workflow';
import { campaignWorkflow, proofWorkflow, reproduceWorkflow, rolloutWorkflow, scheduledCampaignWorkflow } from './index';

setWorkflowOptions({ versioningBehavior: 'AUTO_UPGRADE' }, campaignWorkflow);
setWorkflowOptions({ versioningBehavior: 'AUTO_UPGRADE' }, scheduledCampaignWorkflow);
setWorkflowOptions({ versioningBehavior: 'AUTO_UPGRADE' }, reproduceWorkflow);
setWorkflowOptions({ versioningBehavior: 'PINNED' }, proofWorkflow);
setWorkflowOptions({ versioningBehavior: 'PINNED' }, rolloutWorkflow);

export { campaignWorkflow, proofWorkflow, reproduceWorkflow, rolloutWorkflow, scheduledCampaignWorkflow };
