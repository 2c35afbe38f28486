/**
 * Policy weights published for the workers that sample or evaluate with them: one object per
 * content, `weights/<sha256>`, written once. A worker loads each sha once, checks the bytes
 * against the name, and keeps the model in memory for the next shard or scaling point.
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

/** Publishes a model's weights (a no-op when that content is there already). */
export async function publishWeights(store: CheckpointStore, model: Pick<TrainingState, 'config' | 'weights'>): Promise<WeightsRef> {
  const bytes = encodeWeights(model);
  const ref = { sha256: createHash('sha256').update(bytes).digest('hex'), bytes: bytes.length };
  await store.putOnce(weightsKey(ref), bytes);
  return ref;
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

  /** The model, or undefined when its object is gone (a trainer removes a step's weights once it has its rollouts). */
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
