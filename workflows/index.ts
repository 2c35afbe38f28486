// Every workflow a worker serves; an unversioned worker bundles this file (a versioned one: versioned.ts).
export { proofWorkflow } from './proof';
export { campaignWorkflow } from './campaign';
export { scheduledCampaignWorkflow } from './scheduled';
export { reproduceWorkflow } from './reproduce';
export { rolloutWorkflow } from './rollout';
