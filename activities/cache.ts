/**
 * The last few checkpoints a worker loaded, kept in memory by content digest, so consecutive
 * epochs (and the anchor, which is often the previous policy) are not downloaded again.
 */
import type { CheckpointStore } from '../storage/checkpoints';
import type { CheckpointRef } from '../storage/manifest';
import { contentDigest } from '../storage/manifest';

export class CheckpointCache {
  private readonly entries = new Map<string, Record<string, Buffer>>();

  constructor(
    private readonly store: CheckpointStore,
    private readonly capacity: number,
  ) {}

  async get(ref: CheckpointRef): Promise<Record<string, Buffer>> {
    const hit = this.entries.get(ref.sha256);
    if (hit) {
      this.entries.delete(ref.sha256); // most recently used goes last
      this.entries.set(ref.sha256, hit);
      return hit;
    }
    const { manifest, objects } = await this.store.load(ref.id);
    if (contentDigest(manifest) !== ref.sha256)
      throw new Error(`checkpoint ${ref.id} does not match its reference (content digest differs)`);
    this.entries.set(ref.sha256, objects);
    while (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value!);
    return objects;
  }
}
