import { proxyActivities } from '@temporalio/workflow';
import type { ProofActivities } from '../contracts/proof';
import { QUEUES } from '../contracts/queues';
import { PROOF_RETRY } from './retry';

const onCpu = proxyActivities<ProofActivities>({ taskQueue: QUEUES.cpu, startToCloseTimeout: '2m', retry: PROOF_RETRY });
const onGpu = proxyActivities<ProofActivities>({ taskQueue: QUEUES.gpu, startToCloseTimeout: '2m', retry: PROOF_RETRY });

/** Proves the wiring: CPU activity writes a checkpoint, GPU activity verifies it by reference. */
export async function proofWorkflow(input: { campaign: string; seed: number }) {
  const ref = await onCpu.proofWrite(input);
  const read = await onGpu.proofRead(ref);
  return { ref, read };
}
