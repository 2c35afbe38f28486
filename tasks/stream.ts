import { Prng } from '../util/prng';
import { getTask } from './registry';
import type { SplitConfig } from './config';
import { DEFAULT_SPLITS, poolOf, splitOf, type Pool, type Split } from './splits';
import { ExhaustedError, type Problem, type TaskName } from './types';
import { fileProblems, type JsonlDataset } from './jsonl';

export interface StreamOptions {
  task: TaskName;
  split: Split;
  /** Only with split 'train'. */
  pool?: Pool;
  seed: number;
  /** One difficulty, or a range drawn uniformly per problem. */
  difficulty: number | { min: number; max: number };
  splits?: SplitConfig;
  /**
   * When a difficulty's problems run out: drop it and go on with the others (default), or repeat
   * its problems in their first order, so the mix of difficulties stays as drawn (the RL pool).
   */
  exhausted?: 'drop' | 'repeat';
  /** Task jsonl: the sha256 of its pinned file. */
  dataset?: string;
  /**
   * Task jsonl: the loaded file (its sha256 is `dataset`), passed along by whoever loaded it. Data,
   * not identity: specs are hashed without it.
   */
  file?: JsonlDataset;
}

/**
 * Problems of the requested split (and pool), each id at most once, in an order fixed by the
 * seed. Endless: a difficulty whose problems run out is dropped and the others go on (throws
 * ExhaustedError when none is left), or with `exhausted: 'repeat'` replays its problems.
 */
export function* problemStream(opts: StreamOptions): Generator<Problem, never, undefined> {
  if (opts.pool && opts.split !== 'train')
    throw new Error(`problemStream: pool ${opts.pool} exists only in split train, not ${opts.split}`);
  if (opts.task === 'jsonl') return yield* fileStream(opts);
  const task = getTask(opts.task);
  const cfg = opts.splits ?? DEFAULT_SPLITS;
  const { min, max } = typeof opts.difficulty === 'number' ? { min: opts.difficulty, max: opts.difficulty } : opts.difficulty;
  const levels = Array.from({ length: max - min + 1 }, (_, i) => min + i);
  if (!levels.length) throw new RangeError(`problemStream: empty difficulty range ${min}..${max}`);
  const rng = new Prng(opts.seed).fork(`problems:${opts.task}`);
  const seen = new Set<string>();
  const wanted = (p: Problem) => !seen.has(p.id) && (opts.pool ? poolOf(p, cfg) === opts.pool : splitOf(p, cfg) === opts.split);
  const repeat = opts.exhausted === 'repeat';
  const byLevel = new Map<number, { problems: Problem[]; replayed: number | null }>(
    levels.map((l) => [l, { problems: [], replayed: null }]),
  );
  for (;;) {
    const level = rng.int(levels.length);
    const mine = byLevel.get(levels[level])!;
    if (mine.replayed !== null) {
      yield mine.problems[mine.replayed++ % mine.problems.length];
      continue;
    }
    let problem: Problem;
    try {
      problem = task.generate(rng, levels[level], wanted);
    } catch (e) {
      if (!(e instanceof ExhaustedError)) throw e;
      if (repeat && mine.problems.length) mine.replayed = 0;
      else if (levels.length === 1) throw e;
      else levels.splice(level, 1);
      continue;
    }
    seen.add(problem.id);
    mine.problems.push(problem);
    yield problem;
  }
}

/**
 * A file's problems of the requested split (and pool) and difficulty range, in an order fixed by
 * the seed; when they run out, ExhaustedError, or with `exhausted: 'repeat'` the same order again.
 */
function* fileStream(opts: StreamOptions): Generator<Problem, never, undefined> {
  const cfg = opts.splits ?? DEFAULT_SPLITS;
  const { min, max } = typeof opts.difficulty === 'number' ? { min: opts.difficulty, max: opts.difficulty } : opts.difficulty;
  const mine = fileProblems(opts.file, opts.dataset).filter(
    (p) => p.difficulty >= min && p.difficulty <= max && (opts.pool ? poolOf(p, cfg) === opts.pool : splitOf(p, cfg) === opts.split),
  );
  const where = `${opts.split}${opts.pool ? ` pool ${opts.pool}` : ''}, difficulty ${min}..${max}`;
  if (!mine.length) throw new ExhaustedError(`jsonl: no problem of the file falls in ${where}`);
  new Prng(opts.seed).fork('problems:jsonl').shuffle(mine);
  for (;;) {
    yield* mine;
    if (opts.exhausted !== 'repeat') throw new ExhaustedError(`jsonl: the file has only ${mine.length} problem(s) in ${where}`);
  }
}

export function sampleProblems(n: number, opts: StreamOptions): Problem[] {
  const out: Problem[] = [];
  if (n <= 0) return out;
  for (const p of problemStream(opts)) {
    out.push(p);
    if (out.length === n) break;
  }
  return out;
}
