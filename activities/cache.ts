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

  private async stateBytes(ref: CheckpointRef): Promise<Uint8Array> {
    return stateBytes(ref.id, await this.get(ref));
  }
}

/** The objects that hold a checkpoint's model, in order: a training state (SFT, RL), or an anchor's weights. */
export const STATE_OBJECTS = ['state', 'anchor'] as const;

/** The first of STATE_OBJECTS that a checkpoint holds (by its object names), or undefined. */
export function stateObjectOf(names: Iterable<string>): (typeof STATE_OBJECTS)[number] | undefined {
  const held = new Set(names);
  return STATE_OBJECTS.find((n) => held.has(n));
}

/** The bytes of the training state among a checkpoint's objects: what every reader of a checkpoint's model decodes. */
export function stateBytes(id: string, objects: Record<string, Uint8Array>): Uint8Array {
  const name = stateObjectOf(Object.keys(objects));
  if (!name) throw new Error(`checkpoint ${id} holds no training state`);
  return objects[name];
}
