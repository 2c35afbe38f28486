/** The wiring proof's activities (activities/proof.ts implements them): only a checkpoint reference crosses Temporal. */
import type { CheckpointRef } from '../storage/manifest';

export interface ProofActivities {
  proofWrite(input: { campaign: string; seed: number }): Promise<CheckpointRef>;
  proofRead(ref: CheckpointRef): Promise<{ id: string; sha256: string; bytes: number; verified: boolean }>;
}
