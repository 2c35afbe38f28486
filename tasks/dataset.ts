/**
 * SFT data for a campaign: traces for problems of the SFT pool, in the order the seeded pool
 * stream gives them. A JSONL line with a worked solution gives its own trace; other problems get
 * theirs from the configured teacher (the programmatic one for generated tasks, or an LLM behind
 * an endpoint). Traces longer than the budget are shortened (programmatic) or left out.
 */
import { Prng } from '../util/prng';
import { problemStream, sampleProblems } from './stream';
import type { Access } from '../util/grants';
import type { SplitConfig, TeacherConfig } from './config';
import { endpointWriter, type AnswerCache, type TeacherStats } from './endpoint-teacher';
import { solutionTrace, type JsonlData, type JsonlDataset } from './jsonl';
import { DEFAULT_TEACHER, directTrace, traceChars, writeTrace } from './teacher';
import { ExhaustedError, type Problem, type TaskName, type Trace } from './types';

export interface SftExample extends Trace {
  id: string;
  prompt: string;
}

export interface DatasetSpec {
  task: TaskName;
  difficulty: { min: number; max: number };
  splits: SplitConfig;
  seed: number;
  examples: number;
  style: 'trace' | 'direct';
  teacher: TeacherConfig;
  /** Task jsonl: the sha256 of its pinned file. */
  dataset?: string;
  /** Task jsonl: the loaded file (config/task-file's loadTaskData). Data, not identity: never part of a hash. */
  file?: JsonlDataset;
}

export interface DatasetStats {
  examples: number;
  meanChars: number;
  maxChars: number;
  meanFailedAttempts: number;
  /** Problems left out: no trace fits the budget, or the teacher found none that verifies. */
  skipped: number;
  /** Examples whose trace is the JSONL line's own worked solution. */
  fromSolutions: number;
}

/** Traces for a batch of problems, in order; null where none fits or verifies. */
export type TraceWriter = (problems: Problem[]) => Promise<(Trace | null)[]>;

const solutionOf = (p: Problem) => (p.task === 'jsonl' ? (p.data as JsonlData).solution : undefined);

/**
 * Who writes each problem's trace: its worked solution when it has one, else the teacher (the
 * programmatic one draws from one seeded Prng in problem order; an endpoint teacher is `endpoint`).
 */
export function traceWriter(spec: DatasetSpec, endpoint?: TraceWriter): TraceWriter {
  const rng = new Prng(spec.seed).fork('teacher');
  const fits = (p: Problem, t: Trace | null) => (t && traceChars(p, t) <= spec.teacher.maxChars ? t : null);
  return async (problems) => {
    const out = new Array<Trace | null>(problems.length).fill(null);
    const asked: number[] = [];
    problems.forEach((p, i) => {
      if (spec.style === 'direct') out[i] = fits(p, directTrace(p, rng));
      else if (solutionOf(p) !== undefined) out[i] = fits(p, solutionTrace(p as Problem<JsonlData>));
      else if (spec.teacher.kind === 'endpoint') asked.push(i);
      else if (p.task !== 'jsonl') out[i] = writeTrace(p, rng, spec.teacher);
    });
    if (asked.length) {
      if (!endpoint) throw new Error('traceWriter: an endpoint teacher is configured but no endpoint writer was given');
      const traces = await endpoint(asked.map((i) => problems[i]));
      asked.forEach((i, k) => (out[i] = traces[k]));
    }
    return out;
  };
}

/**
 * Draws problems from the SFT pool in stream order and keeps the first `examples` that get a
 * trace. The programmatic teacher is tried on at most 1.2x + 16 problems (a few do not fit); an
 * endpoint teacher, which may reject most, on up to 10x + 16; a file's pool, on all of it.
 */
export async function synthesizeSft(
  spec: DatasetSpec,
  write: TraceWriter = traceWriter(spec),
): Promise<{ examples: SftExample[]; stats: DatasetStats }> {
  const examples: SftExample[] = [];
  const stream = problemStream({
    task: spec.task,
    split: 'train',
    pool: 'sft',
    seed: spec.seed,
    difficulty: spec.difficulty,
    splits: spec.splits,
    dataset: spec.dataset,
    file: spec.file,
  });
  const limit = spec.task === 'jsonl' ? Infinity : Math.ceil(spec.examples * (spec.teacher.kind === 'endpoint' ? 10 : 1.2)) + 16;
  let drawn = 0;
  let skipped = 0;
  let fromSolutions = 0;
  let exhausted = '';
  while (examples.length < spec.examples && drawn < limit && !exhausted) {
    // Exactly as many as still needed: with every trace kept, the last one drawn is the last one used.
    const batch: Problem[] = [];
    try {
      while (batch.length < Math.min(spec.examples - examples.length, limit - drawn)) batch.push(stream.next().value);
    } catch (e) {
      if (!(e instanceof ExhaustedError)) throw e;
      exhausted = e.message;
    }
    drawn += batch.length;
    (await write(batch)).forEach((t, i) => {
      if (!t) return void skipped++;
      const p = batch[i];
      if (solutionOf(p) !== undefined && spec.style === 'trace') fromSolutions++;
      examples.push({ id: p.id, prompt: p.prompt, ...t });
    });
  }
  if (examples.length < spec.examples) {
    const why = exhausted || `${drawn} problems drawn`;
    throw new ExhaustedError(
      `only ${examples.length} of ${spec.examples} SFT examples (${why}; ${skipped} without a trace that fits ${spec.teacher.maxChars} characters${spec.teacher.kind === 'endpoint' ? ' and verifies' : ''})`,
    );
  }
  const chars = examples.map((e) => traceChars(e, e));
  return {
    examples,
    stats: {
      examples: examples.length,
      meanChars: chars.reduce((a, b) => a + b, 0) / chars.length,
      maxChars: Math.max(...chars),
      meanFailedAttempts: examples.reduce((a, e) => a + e.failedAttempts, 0) / examples.length,
      skipped,
      fromSolutions,
    },
  };
}

/**
 * The SFT data of a spec with its configured teacher (an endpoint teacher reads and fills `cache`),
 * as the campaign's synthesis activity and `t1 synthesize` both write it: JSONL, one example a line.
 * `access`: the worker's grants (an endpoint teacher they do not cover fails before any request)
 * or the user's own CLI process.
 */
export async function synthesizeWithTeacher(
  spec: DatasetSpec,
  o: { access: Access; cache: AnswerCache; extraChars?: string; onTeacherProgress?: (t: TeacherStats) => void },
): Promise<{ examples: SftExample[]; stats: DatasetStats; teacher?: TeacherStats; jsonl: string }> {
  const teacher =
    spec.teacher.kind === 'endpoint'
      ? endpointWriter(spec.teacher, { access: o.access, cache: o.cache, extraChars: o.extraChars, onProgress: o.onTeacherProgress })
      : undefined;
  const { examples, stats } = await synthesizeSft(spec, traceWriter(spec, teacher?.write));
  return { examples, stats, teacher: teacher?.stats, jsonl: examples.map((e) => JSON.stringify(e)).join('\n') + '\n' };
}

/**
 * Validation traces for SFT's held-out loss: a JSONL line's worked solution (none without one), else
 * the programmatic teacher's trace (whichever teacher wrote the training data: no requests for it).
 */
export function validationTraces(spec: DatasetSpec, problems: readonly Problem[]): { problem: Problem; trace: Trace }[] {
  const rng = new Prng(spec.seed).fork('val-traces');
  const teacher = spec.teacher.kind === 'endpoint' ? { ...DEFAULT_TEACHER, maxChars: spec.teacher.maxChars } : spec.teacher;
  return problems.flatMap((problem) => {
    const trace = problem.task === 'jsonl' ? solutionTrace(problem as Problem<JsonlData>) : writeTrace(problem, rng, teacher);
    return trace && traceChars(problem, trace) <= teacher.maxChars ? [{ problem, trace }] : [];
  });
}

/** Held-out problems of a split, the same for every checkpoint evaluated with this seed. */
export function heldOut(
  spec: Pick<DatasetSpec, 'task' | 'difficulty' | 'splits' | 'seed' | 'dataset' | 'file'>,
  split: 'val' | 'test',
  n: number,
): Problem[] {
  return sampleProblems(n, {
    task: spec.task,
    split,
    seed: spec.seed,
    difficulty: spec.difficulty,
    splits: spec.splits,
    dataset: spec.dataset,
    file: spec.file,
  });
}
