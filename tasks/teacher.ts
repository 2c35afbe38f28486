/**
 * Programmatic chain-of-thought teacher (T1 section 1): one trace per problem shaped
 * attempt -> reflection naming the error -> new attempt -> ... -> answer -> self-verification.
 * Failed attempts come from the task's own search and really are wrong; the final answer is
 * verified before a trace is returned.
 *
 *   3 5 7 10 -> 22          prompt
 *   try 7*5-10+3=28         reasoning: attempt
 *   no: 28 != 22            reasoning: reflection
 *   try 7*5-3-10=22         reasoning: the attempt that works
 *   7*5-3-10                answer
 *   chk 7*5-3-10=22 ok      verification
 */
import { ProgrammaticTeacherSchema, type ProgrammaticTeacher } from './config';
import type { JsonlData } from './jsonl';
import type { Prng } from '../util/prng';
import { getTask } from './registry';
import type { AttemptLog, Problem, Trace } from './types';
import { sampleWeighted } from './weighted';

export const TRY = 'try ';
export const NO = 'no: ';
export const CHK = 'chk ';

/** Every character a prompt, trace or answer can contain (a subset of the tokenizer's). */
export const ALPHABET = '\n !()*+,-/0123456789:=>chiknorsty';

/** How the tokenizer shows the [ANS] special token when decoding to text. */
export const ANSWER_CUE = '<ANS>';

export const DEFAULT_TEACHER: ProgrammaticTeacher = ProgrammaticTeacherSchema.parse({});

/** Characters the model reads and writes for this problem and trace (special tokens excluded). */
export function traceChars(problem: Pick<Problem, 'prompt'>, trace: Trace): number {
  return problem.prompt.length + trace.reasoning.length + trace.answer.length + trace.verification.length;
}

export function countSteps(reasoning: string): { attempts: number; reflections: number; total: number } {
  const lines = reasoning.split('\n').filter((l) => l.trim() !== '');
  return {
    attempts: lines.filter((l) => l.startsWith(TRY)).length,
    reflections: lines.filter((l) => l.startsWith(NO)).length,
    total: lines.length,
  };
}

function compose(log: AttemptLog, failures: number, check: string): Trace {
  const lines = log.failed.slice(0, failures).flatMap((f) => [TRY + f.attempt, NO + f.error]);
  lines.push(TRY + log.attempt);
  return {
    reasoning: lines.join('\n') + '\n',
    answer: log.answer,
    verification: `\n${CHK}${check} ok`,
    failedAttempts: failures,
    steps: lines.length,
  };
}

function assertEmittable(problem: Problem, trace: Trace): Trace {
  if (!getTask(problem.task).verify(problem, trace.answer)) {
    throw new Error(
      `teacher: answer ${JSON.stringify(trace.answer)} does not verify for ${problem.task} ${JSON.stringify(problem.prompt)}`,
    );
  }
  for (const c of problem.prompt + trace.reasoning + trace.answer + trace.verification) {
    if (!ALPHABET.includes(c)) throw new Error(`teacher: character ${JSON.stringify(c)} outside ALPHABET`);
  }
  return trace;
}

/**
 * The trace for one problem, with a failed-attempt count drawn from the configured weights and
 * then cut, latest attempts first, until prompt + trace fits maxChars. Null when even a trace
 * without failed attempts does not fit.
 */
export function writeTrace(problem: Problem, rng: Prng, config: ProgrammaticTeacher = DEFAULT_TEACHER): Trace | null {
  const task = getTask(problem.task);
  const wanted = sampleWeighted(config.failedAttemptWeights, rng);
  const log = task.attempts(problem, rng, wanted, { slipRate: config.slipRate });
  const check = task.check(problem, log.answer);
  for (let k = log.failed.length; k >= 0; k--) {
    const trace = compose(log, k, check);
    if (traceChars(problem, trace) <= config.maxChars) return assertEmittable(problem, trace);
  }
  return null;
}

/** Answer only, for ablations: no reasoning, no verification. */
export function directTrace(problem: Problem, rng: Prng): Trace {
  const direct = (answer: string): Trace => ({ reasoning: '', answer, verification: '', failedAttempts: 0, steps: 0 });
  if (problem.task === 'jsonl') return direct((problem.data as JsonlData).answer);
  const { answer } = getTask(problem.task).attempts(problem, rng, 0, DEFAULT_TEACHER);
  return assertEmittable(problem, direct(answer));
}

/** Splits the text after the answer cue into the answer line and what follows it. */
export function splitAnswer(afterCue: string): { answer: string; verification: string } {
  const nl = afterCue.indexOf('\n');
  return nl < 0
    ? { answer: afterCue.trim(), verification: '' }
    : { answer: afterCue.slice(0, nl).trim(), verification: afterCue.slice(nl) };
}

/** The answer in a raw response decoded with its cue shown: the line after the last cue; null without one. */
export function extractAnswer(raw: string): string | null {
  const at = raw.lastIndexOf(ANSWER_CUE);
  return at < 0 ? null : splitAnswer(raw.slice(at + ANSWER_CUE.length)).answer;
}
