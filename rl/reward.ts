/**
 * Rule-based reward (T1 section 3, steps 3-4): r = 1 when the task's verifier accepts the answer
 * line, and a garbage penalty p = -1 for responses cut before a complete answer line, heavily
 * repeated or unparseable.
 */
import { BASE_TOKENIZER, type Tokenizer } from '../model/tokenizer';
import { getVerifier } from '../tasks/registry';
import { countSteps, splitAnswer } from '../tasks/teacher';
import type { Problem } from '../tasks/types';
import type { RlConfig } from './config';

/** Checked in this order; a response counts under the first reason that applies. */
export const GARBAGE_REASONS = ['truncated', 'repetition', 'unparseable'] as const;
export type GarbageReason = (typeof GARBAGE_REASONS)[number];

export interface Judgement {
  /** r: the verifier accepted the answer line. */
  correct: boolean;
  garbage: GarbageReason | null;
  /** The answer line (after ANS, before the verification line); null without ANS. */
  answer: string | null;
  /** Reasoning lines (attempts, reflections). */
  steps: number;
}

/** Share of the n-grams of `ids` that repeat an earlier n-gram (0 when there are none). */
export function repeatFraction(ids: ArrayLike<number>, n: number): number {
  const total = ids.length - n + 1;
  if (total <= 0) return 0;
  const seen = new Set<string>();
  let repeats = 0;
  for (let i = 0; i < total; i++) {
    const key = Array.prototype.slice.call(ids, i, i + n).join(',');
    if (seen.has(key)) repeats++;
    else seen.add(key);
  }
  return repeats / total;
}

/** Judges one sampled response: the ids after RESP, through EOS when it stopped. */
export function judge(
  problem: Problem,
  response: ArrayLike<number>,
  garbage: RlConfig['garbage'],
  tokenizer: Pick<Tokenizer, 'parseResponse'> = BASE_TOKENIZER,
): Judgement {
  const parsed = tokenizer.parseResponse(response);
  // parseResponse keeps the verification line after the answer; the verifier sees the answer line only.
  const answer = parsed.answer === null ? null : splitAnswer(parsed.answer).answer;
  const task = getVerifier(problem.task);
  const steps = countSteps(parsed.reasoning).total;
  // Cut at the length limit before the answer line was finished: no answer to trust.
  const complete = parsed.stopped || (parsed.answer?.includes('\n') ?? false);
  let reason: GarbageReason | null = null;
  if (!complete) reason = 'truncated';
  else if (repeatFraction(response, garbage.ngram) > garbage.maxRepeatFraction) reason = 'repetition';
  else if (answer === null || task.parseAnswer(answer) === null) reason = 'unparseable';
  return { correct: complete && answer !== null && task.verify(problem, answer), garbage: reason, answer, steps };
}

/**
 * DAPO's soft overlong punishment of a response of `length` tokens (through EOS when it stopped),
 * with L = maxNewTokens and Lc = bufferTokens: 0 up to L - Lc tokens, then falling linearly to
 * -penalty at L, -penalty beyond; 0 when Lc = 0 (off). Added to the task reward, on top of the
 * garbage penalty of a response that the limit cut.
 */
export function overlongPenalty(length: number, maxNewTokens: number, cfg: RlConfig['overlong']): number {
  const { bufferTokens: Lc, penalty } = cfg;
  if (Lc === 0) return 0;
  const free = maxNewTokens - Lc;
  if (length <= free) return 0;
  if (length <= maxNewTokens) return (penalty * (free - length)) / Lc;
  return -penalty;
}
