import { type Prng } from '../util/prng';

/** Position in a deterministic epoch-by-epoch shuffle of a dataset: JSON, stored in checkpoints. */
export interface DataCursor {
  epoch: number;
  /** Next index into this epoch's permutation. */
  index: number;
}

/**
 * Hands out dataset indices in a fixed order: epoch e is a permutation drawn from
 * rng.fork(`epoch:${e}`), so the order depends only on the Prng state and the cursor.
 */
export class DataOrder {
  private perm: number[] | null = null;

  constructor(
    private readonly size: number,
    private readonly rng: Prng,
    public cursor: DataCursor = { epoch: 0, index: 0 },
  ) {
    if (!(size > 0)) throw new Error('DataOrder: empty dataset');
  }

  /** The next n indices, wrapping into following epochs. */
  take(n: number): number[] {
    const out: number[] = [];
    while (out.length < n) {
      if (this.cursor.index >= this.size) this.cursor = { epoch: this.cursor.epoch + 1, index: 0 };
      this.perm ??= this.permutation(this.cursor.epoch);
      out.push(this.perm[this.cursor.index]);
      this.cursor = { ...this.cursor, index: this.cursor.index + 1 };
      if (this.cursor.index >= this.size) this.perm = null;
    }
    return out;
  }

  private permutation(epoch: number): number[] {
    return this.rng.fork(`epoch:${epoch}`).shuffle(Array.from({ length: this.size }, (_, i) => i));
  }
}
