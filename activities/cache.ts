/**
 * The last few checkpoints a worker loaded, kept in memory by content digest, so consecutive
 * epochs (and the anchor, which is often the previous policy) are not downloaded again.
 */
import type { ModelConfig } from '../model/config';
import type { LlamaConfig } from '../model/llama-config';
import { decodeAnyState, decodeState, type TrainingState } from '../model/state';
import type { CheckpointStore } from '../storage/checkpoints';
import type { CheckpointRef } from '../storage/manifest';
import { contentDigest } from '../storage/manifest';
import { Lru } from '../util/lru';

export class CheckpointCache {
  private readonly entries: Lru<Record<string, Buffer>>;

  constructor(
    private readonly store: CheckpointStore,
    capacity: number,
  ) {
    this.entries = new Lru(capacity);
  }

  async get(ref: CheckpointRef): Promise<Record<string, Buffer>> {
    const hit = this.entries.get(ref.sha256);
    if (hit) return hit;
    const { manifest, objects } = await this.store.load(ref.id);
    if (contentDigest(manifest) !== ref.sha256)
      throw new Error(`checkpoint ${ref.id} does not match its reference (content digest differs)`);
    this.entries.set(ref.sha256, objects);
    return objects;
  }

  /** The training state in a checkpoint of our transformer (SFT, RL, or anchor weights). */
  async state(ref: CheckpointRef): Promise<TrainingState> {
    return decodeState(await this.stateBytes(ref));
  }

  /** The training state in a checkpoint of either family (ours, or a pretrained base's). */
  async anyState(ref: CheckpointRef): Promise<TrainingState<ModelConfig | LlamaConfig>> {
    return decodeAnyState(await this.stateBytes(ref));
  }

  private async stateBytes(ref: CheckpointRef): Promise<Buffer> {
    const objects = await this.get(ref);
    const bytes = objects.state ?? objects.anchor;
    if (!bytes) throw new Error(`checkpoint ${ref.id} holds no training state`);
    return bytes;
  }
}
