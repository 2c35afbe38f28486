/**
 * The RL prompt pool as an indexable sequence: position i is the i-th problem of the seeded RL
 * pool stream (or, after the difficulty filter, the i-th kept one), so a durable integer cursor
 * names where training stands and a resumed run sees the very same prompts.
 */
import { problemStream, type StreamOptions } from '../tasks/stream';
import type { JsonlDataset } from '../tasks/jsonl';
import type { Problem } from '../tasks/types';

export interface PromptSource extends Omit<StreamOptions, 'split' | 'pool' | 'exhausted' | 'file'> {
  /** Stream positions kept by the difficulty filter; absent: every position in order. */
  kept?: number[];
}

export class PromptPool {
  private readonly stream: Generator<Problem, never, undefined>;
  private readonly seen: Problem[] = [];

  /** `file`: task jsonl's loaded file (the source names it by sha256 only: a source is recorded in RL states). */
  constructor(
    readonly source: PromptSource,
    file?: JsonlDataset,
  ) {
    if (source.kept && !source.kept.length) throw new Error('PromptPool: the difficulty filter kept no prompts');
    // A level that runs out repeats its prompts: RL keeps the difficulty mix it was configured with.
    this.stream = problemStream({ ...source, file, split: 'train', pool: 'rl', exhausted: 'repeat' });
  }

  /** Problem at a stream position (generated once, memoised). */
  atStream(position: number): Problem {
    while (this.seen.length <= position) this.seen.push(this.stream.next().value);
    return this.seen[position];
  }

  /** Problem at a cursor position; a filtered pool wraps around (one wrap is one pass over it). */
  at(cursor: number): Problem {
    const kept = this.source.kept;
    return this.atStream(kept ? kept[cursor % kept.length] : cursor);
  }

  take(cursor: number, n: number): Problem[] {
    return Array.from({ length: n }, (_, i) => this.at(cursor + i));
  }
}
