import type { Prng } from '../util/prng';
import { hash64 } from './hash';
import { ConfigError, UserError } from '../util/errors';

/** Tasks whose problems a generator makes (and whose own search the programmatic teacher uses). */
export const GENERATOR_NAMES = ['countdown', 'arithmetic'] as const;
export type GeneratorName = (typeof GENERATOR_NAMES)[number];
export const TASK_NAMES = [...GENERATOR_NAMES, 'jsonl'] as const;
export type TaskName = (typeof TASK_NAMES)[number];

/**
 * Difficulty range of each task (countdown: numbers; arithmetic: operations; jsonl: the file's
 * optional `difficulty` field): the generators, the JSONL loader and the campaign schema read it here.
 */
export const DIFFICULTY: Record<TaskName, { min: number; max: number }> = {
  countdown: { min: 3, max: 6 },
  arithmetic: { min: 1, max: 8 },
  jsonl: { min: 1, max: 10 },
};

export interface Problem<D = unknown> {
  task: TaskName;
  /** Stable hash of the content (task and prompt; the prompt states the whole problem). */
  id: string;
  prompt: string;
  difficulty: number;
  /** Task-specific, JSON-serialisable. */
  data: D;
}

/**
 * One teacher trace. The model sees [BOS] prompt [RESP] reasoning [ANS] answer verification [EOS].
 * reasoning: lines joined by '\n', ending with '\n' ('' for a direct trace); answer: one line that
 * the task's verify accepts; verification: '\n' and one check line ('' for a direct trace).
 */
export interface Trace {
  reasoning: string;
  answer: string;
  verification: string;
  failedAttempts: number;
  /** Lines of reasoning. */
  steps: number;
}

/** A wrong attempt and the error it made, as line bodies (the teacher adds the line prefixes). */
export interface FailedAttempt {
  attempt: string;
  error: string;
}

/** What a task's own search did on one problem: wrong attempts first, then a right one. */
export interface AttemptLog {
  failed: FailedAttempt[];
  attempt: string;
  answer: string;
}

export interface AttemptOptions {
  /** Arithmetic: probability that one evaluation step in a failed attempt slips. */
  slipRate: number;
}

/** What rewards and evaluation need of a task: the answer's syntax and its check. */
export interface Verifier<D = unknown, A = unknown> {
  readonly name: TaskName;
  /** Syntax only: null when the text is not an answer of this task's form. */
  parseAnswer(answerText: string): A | null;
  verify(problem: Problem<D>, answerText: string): boolean;
  /**
   * What maj@k votes under: parsed answers with equal keys are one answer. Equal keys must mean the
   * same verify outcome on every problem, so no vote pools a right answer with a wrong one.
   * Absent: the parsed answer's JSON.
   */
  voteKey?(answer: A): string;
}

/** A generated task: problems on demand at any difficulty, and a search the programmatic teacher replays. */
export interface Task<D = unknown, A = unknown> extends Verifier<D, A> {
  readonly name: GeneratorName;
  readonly minDifficulty: number;
  readonly maxDifficulty: number;
  /**
   * A problem of the given difficulty. `accept` sees each candidate before the (possibly costly)
   * solvability check, so callers filtering by split or novelty reject cheaply.
   */
  generate(rng: Prng, difficulty: number, accept?: (candidate: Problem<D>) => boolean): Problem<D>;
  /**
   * Runs the task's search, keeping up to `failures` distinct wrong attempts (fewer only when the
   * search cannot find that many), then a right one whose answer verifies.
   */
  attempts(problem: Problem<D>, rng: Prng, failures: number, options: AttemptOptions): AttemptLog;
  /** Body of the self-verification line for a verified answer, e.g. `7*5-3-10=22`. */
  check(problem: Problem<D>, answer: string): string;
}

export function problemId(task: TaskName, prompt: string): string {
  return hash64(`${task}\n${prompt}`);
}

export function checkDifficulty(task: Task<any, any>, difficulty: number): void {
  if (!Number.isInteger(difficulty) || difficulty < task.minDifficulty || difficulty > task.maxDifficulty) {
    throw new ConfigError(
      `task.difficulty: ${task.name} difficulty must be an integer in ${task.minDifficulty}..${task.maxDifficulty}, got ${difficulty}`,
    );
  }
}

/** A generator found nothing acceptable: its problem space, or what a filter leaves of it, is used up. */
export class ExhaustedError extends UserError {
  override name = 'ExhaustedError';
}

/** Guards generation loops against configurations or filters that can never be satisfied. */
export function giveUp(task: TaskName, what: string, tries: number): never {
  throw new ExhaustedError(`${task}: ${what} after ${tries} candidates (problem space exhausted or configuration too strict)`);
}
