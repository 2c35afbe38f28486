import { proxyActivities } from '@temporalio/workflow';
import type { ProofActivities } from '../activities/proof';
import { QUEUES } from './queues';

const retry = { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s', maximumAttempts: 10 };
const onCpu = proxyActivities<ProofActivities>({ taskQueue: QUEUES.cpu, startToCloseTimeout: '2m', retry });
const onGpu = proxyActivities<ProofActivities>({ taskQueue: QUEUES.gpu, startToCloseTimeout: '2m', retry });

/** Proves the wiring: CPU activity writes a checkpoint, GPU activity verifies it by reference. */
export async function proofWorkflow(input: { campaign: string; seed: number }) {
  const ref = await onCpu.proofWrite(input);
  const read = await onGpu.proofRead(ref);
  return { ref, read };
}
