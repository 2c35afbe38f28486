/**
 * Policy weights published for the workers that sample or evaluate with them: one object per
 * content, `weights/<sha256>`, written once. A worker loads each sha once, checks the bytes
 * against the name, and keeps the model in memory for the next shard or scaling point.
 *
 * Two runs can publish the same content (the same seed and config give the same bits), so the
 * object is shared: each publisher holds it with its own marker `weights/<sha256>.refs/<holder>`,
 * and `releaseWeights` deletes the object only when the last marker is gone (CheckpointStore's
 * holdShared/releaseShared). A publisher that never releases (an evaluation sweep) holds it under
 * `unreleased` until gc finds that marker stale.
 */
import { createHash } from 'node:crypto';
import { decodeState, encodeState, type TrainingState } from '../model/state';
import { Transformer } from '../model/transformer';
import { Lru } from '../util/lru';
import { WEIGHTS_PREFIX, type CheckpointStore } from './checkpoints';

export interface WeightsRef {
  sha256: string;
  bytes: number;
}

export const weightsKey = (ref: Pick<WeightsRef, 'sha256'>) => `${WEIGHTS_PREFIX}/${ref.sha256}`;

/** A model's config and weights as a training state with nothing else in it. */
export function encodeWeights({ config, weights }: Pick<TrainingState, 'config' | 'weights'>): Uint8Array {
  return encodeState({ config, step: 0, prng: [1, 0, 0, 0], cursor: null, weights, optimizer: { t: 0, m: {}, v: {} } });
}

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

/** The last few published models this worker loaded, by sha256. Models it hands out stay owned by the cache. */
export class ModelCache {
  // An evicted model's tensors are freed: the cache owns every model it hands out.
  private readonly models: Lru<Transformer>;

  constructor(
    private readonly store: CheckpointStore,
    capacity = 2,
  ) {
    this.models = new Lru(capacity, (model) => model.dispose());
  }

  async get(ref: WeightsRef): Promise<Transformer> {
    const model = await this.find(ref);
    if (!model) throw new Error(`published weights ${ref.sha256.slice(0, 12)} are gone (removed by gc, or never published)`);
    return model;
  }

  /** The model, or undefined when its object is gone (the last run holding a step's weights releases them once it has its rollouts). */
  async find(ref: WeightsRef): Promise<Transformer | undefined> {
    const hit = this.models.get(ref.sha256);
    if (hit) return hit;
    const object = await this.store.getObject(weightsKey(ref));
    if (!object) return undefined;
    if (object.sha256 !== ref.sha256) throw new Error(`published weights ${ref.sha256.slice(0, 12)}: content digest differs`);
    const state = decodeState(object.bytes);
    const model = new Transformer(state.config, state.weights);
    this.models.set(ref.sha256, model);
    return model;
  }
}
