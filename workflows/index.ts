// Every workflow a worker serves; the worker bundles this file.
export { proofWorkflow } from './proof';
