/**
 * Policy weights published for the workers that sample or evaluate with them: one object per
 * content, `weights/<sha256>`, written once. A worker loads each sha once, checks the bytes
 * against the name, and keeps the model in memory for the next shard or scaling point (model/cache.ts).
 * No tfjs here: the bytes are a weights-only training state (model/state.ts).
 *
 * Two runs can publish the same content (the same seed and config give the same bits), so the
 * object is shared: each publisher holds it with its own marker `weights/<sha256>.refs/<holder>`,
 * and `releaseWeights` deletes the object only when the last marker is gone (CheckpointStore's
 * holdShared/releaseShared). A publisher that never releases (an evaluation sweep) holds it under
 * `unreleased` until gc finds that marker stale.
 */
import { createHash } from 'node:crypto';
import { encodeWeights, type TrainingState } from '../model/state';
import { WEIGHTS_PREFIX, type CheckpointStore } from './checkpoints';

export interface WeightsRef {
  sha256: string;
  bytes: number;
}

export const weightsKey = (ref: Pick<WeightsRef, 'sha256'>) => `${WEIGHTS_PREFIX}/${ref.sha256}`;

/** The holder of weights published by a caller that does not release them: gc removes them once this marker is stale. */
export const UNRELEASED = 'unreleased';

/**
 * Publishes a model's weights, held by `holder` (letters, digits, ".", "_", "-"; unique per run and
 * attempt) until `releaseWeights`; writing the bytes is a no-op when that content is there already.
 */
export async function publishWeights(
  store: CheckpointStore,
  model: Pick<TrainingState, 'config' | 'weights'>,
  holder: string = UNRELEASED,
): Promise<WeightsRef> {
  const bytes = encodeWeights(model);
  const ref = { sha256: createHash('sha256').update(bytes).digest('hex'), bytes: bytes.length };
  await store.holdShared(weightsKey(ref), holder, () => store.putOnce(weightsKey(ref), bytes));
  return ref;
}

/** Drops `holder`'s hold on published weights; the object is deleted when no other run holds it. Returns whether it was. */
export function releaseWeights(store: CheckpointStore, ref: Pick<WeightsRef, 'sha256'>, holder: string): Promise<boolean> {
  return store.releaseShared(weightsKey(ref), holder);
}

/**
 * The bytes of published weights, checked against their name; undefined when the object is gone
 * (the last run holding a step's weights releases them once it has its rollouts). model/cache.ts
 * keeps the models built from them.
 */
export async function readWeights(store: CheckpointStore, ref: Pick<WeightsRef, 'sha256'>): Promise<Uint8Array | undefined> {
  const object = await store.getObject(weightsKey(ref));
  if (!object) return undefined;
  if (object.sha256 !== ref.sha256) throw new Error(`published weights ${ref.sha256.slice(0, 12)}: content digest differs`);
  return object.bytes;
}
