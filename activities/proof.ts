/**
 * The wiring proof: one activity on the CPU queue writes a checkpoint, one on the GPU queue
 * reads it back by reference. Only the reference crosses Temporal.
 */
import { createHash } from 'node:crypto';
import type { CheckpointStore } from '../storage/checkpoints';
import { refOf, type CheckpointRef } from '../storage/manifest';
import type { ProofActivities } from '../contracts/proof';

export function proofActivities(store: CheckpointStore, backend: string): ProofActivities {
  return {
    async proofWrite(input: { campaign: string; seed: number }): Promise<CheckpointRef> {
      // Deterministic bytes from the seed, so a retried activity commits identical content (a no-op).
      const bytes = new Uint8Array(64 * 1024);
      let block = createHash('sha256').update(`proof-${input.seed}`).digest();
      for (let i = 0; i < bytes.length; i += 32) {
        bytes.set(block.subarray(0, Math.min(32, bytes.length - i)), i);
        block = createHash('sha256').update(block).digest();
      }
      const { manifest } = await store.commit(
        { id: `${input.campaign}/proof`, kind: 'proof', configHash: `seed-${input.seed}`, backend, meta: { seed: input.seed } },
        { payload: bytes },
      );
      return refOf(manifest);
    },

    async proofRead(ref: CheckpointRef): Promise<{ id: string; sha256: string; bytes: number; verified: boolean }> {
      const { manifest, objects } = await store.load(ref.id);
      const actual = refOf(manifest).sha256;
      if (actual !== ref.sha256) throw new Error(`checkpoint ${ref.id} changed: reference says ${ref.sha256}, store has ${actual}`);
      return { id: ref.id, sha256: actual, bytes: objects.payload.byteLength, verified: true };
    },
  };
}
