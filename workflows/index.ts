// Every workflow a worker serves; the worker bundles this file.
export { proofWorkflow } from './proof';
export { campaignWorkflow } from './campaign';
export { scheduledCampaignWorkflow } from './scheduled';
export { reproduceWorkflow } from './reproduce';
export { rolloutWorkflow } from './rollout';
