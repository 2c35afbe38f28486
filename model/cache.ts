/**
 * The last few published models this worker loaded (storage/weights.ts), by sha256. Models it hands
 * out stay owned by the cache: an evicted model's tensors are freed.
 */
import { Lru } from '../util/lru';
import { decodeState } from './state';
import { Transformer } from './transformer';

/** Reads published weights' bytes (checked against their sha256), or undefined when they are gone. */
export type WeightsReader = (ref: { sha256: string }) => Promise<Uint8Array | undefined>;

export class ModelCache {
  private readonly models: Lru<Transformer>;

  constructor(
    private readonly read: WeightsReader,
    capacity = 2,
  ) {
    this.models = new Lru(capacity, (model) => model.dispose());
  }

  async get(ref: { sha256: string }): Promise<Transformer> {
    const model = await this.find(ref);
    if (!model) throw new Error(`published weights ${ref.sha256.slice(0, 12)} are gone (removed by gc, or never published)`);
    return model;
  }

  /** The model, or undefined when its object is gone (the last run holding a step's weights releases them once it has its rollouts). */
  async find(ref: { sha256: string }): Promise<Transformer | undefined> {
    const hit = this.models.get(ref.sha256);
    if (hit) return hit;
    const bytes = await this.read(ref);
    if (!bytes) return undefined;
    const state = decodeState(bytes);
    const model = new Transformer(state.config, state.weights);
    this.models.set(ref.sha256, model);
    return model;
  }
}
