/**
 * Countdown: reach the target from the given numbers with + - * / and parentheses, each given
 * number used at most once (not all required). Prompt `3 5 7 10 -> 22`, answer `7*5-3-10`.
 *
 * Arithmetic is exact over the rationals: any intermediate value is allowed (fractions and
 * negatives included) and the whole expression must equal the target exactly; a division by zero
 * anywhere makes the answer invalid. The generator and teacher only ever write solutions with
 * non-negative integer intermediates, which these rules accept.
 */
import { z } from 'zod';
import type { Prng } from '../util/prng';
import { leaves, parseExpr, show, type Expr } from './expr';
import { greedyAttempt, solveCountdown } from './countdown-search';
import { evalRational } from './rational';
import { checkDifficulty, DIFFICULTY, giveUp, problemId, type FailedAttempt, type Problem, type Task } from './types';

/** Difficulty is the count of numbers (3..6); these are the other knobs. */
export const CountdownConfigSchema = z
  .object({
    maxNumber: z.number().int().min(2).max(1000).default(20),
    minTarget: z.number().int().min(1).default(10),
    maxTarget: z.number().int().min(1).default(99),
  })
  .refine((c) => c.minTarget <= c.maxTarget, { message: 'minTarget must not exceed maxTarget' });

export interface CountdownData {
  /** Ascending, so one problem has one prompt and one id. */
  numbers: number[];
  target: number;
}

export interface CountdownAnswer {
  expr: Expr;
  /** The `=N` written after the expression, if any. */
  claimed: number | null;
}

const MAX_REJECTED = 20_000;
const MAX_UNSOLVABLE = 2_000;
const GREEDY_TRIES = 1_000;

function parseCountdownAnswer(text: string): CountdownAnswer | null {
  const parts = text.split('=');
  if (parts.length > 2) return null;
  const expr = parseExpr(parts[0].trim());
  if (!expr) return null;
  if (parts.length === 1) return { expr, claimed: null };
  const m = /^\s*([1-9]\d{0,14}|0)\s*$/.exec(parts[1]);
  return m ? { expr, claimed: Number(m[1]) } : null;
}

export function createCountdown(config: z.input<typeof CountdownConfigSchema> = {}): Task<CountdownData, CountdownAnswer> {
  const cfg = CountdownConfigSchema.parse(config);

  const make = (numbers: number[], target: number): Problem<CountdownData> => {
    const prompt = `${numbers.join(' ')} -> ${target}`;
    return { task: 'countdown', id: problemId('countdown', prompt), prompt, difficulty: numbers.length, data: { numbers, target } };
  };

  const task: Task<CountdownData, CountdownAnswer> = {
    name: 'countdown',
    minDifficulty: DIFFICULTY.countdown.min,
    maxDifficulty: DIFFICULTY.countdown.max,

    generate(rng: Prng, difficulty: number, accept?: (candidate: Problem<CountdownData>) => boolean) {
      checkDifficulty(task, difficulty);
      let rejected = 0;
      let unsolvable = 0;
      for (;;) {
        const numbers = Array.from({ length: difficulty }, () => 1 + rng.int(cfg.maxNumber)).sort((a, b) => a - b);
        const target = cfg.minTarget + rng.int(cfg.maxTarget - cfg.minTarget + 1);
        const candidate = make(numbers, target);
        // A target among the numbers is solved by copying it: no reasoning to learn.
        if (numbers.includes(target) || (accept && !accept(candidate))) {
          if (++rejected > MAX_REJECTED) giveUp('countdown', 'no acceptable problem', rejected);
          continue;
        }
        if (solveCountdown(numbers, target)) return candidate;
        if (++unsolvable > MAX_UNSOLVABLE) giveUp('countdown', 'no solvable problem', unsolvable);
      }
    },

    parseAnswer: parseCountdownAnswer,

    verify(problem, answerText) {
      const answer = parseCountdownAnswer(answerText);
      const { numbers, target } = problem.data;
      if (!answer || (answer.claimed !== null && answer.claimed !== target)) return false;
      const unused = numbers.slice();
      for (const v of leaves(answer.expr)) {
        const i = unused.indexOf(v);
        if (i < 0) return false; // not given, or given fewer times than used
        unused.splice(i, 1);
      }
      const value = evalRational(answer.expr);
      return value !== null && value.d === 1n && value.n === BigInt(target);
    },

    // The exact value and the numbers used, not the value alone: `7` or `3+3+1` may equal `3+4` but
    // break the rules, and pooling them would let sample order decide whether the vote is right.
    // Equal keys (`3+4` and `4+3`; `2*(3+4)` and `4*2+3*2` differ in numbers) verify alike on every problem.
    voteKey({ expr, claimed }) {
      const value = evalRational(expr);
      const used = leaves(expr).sort((a, b) => a - b);
      if (value === null) return `÷0 ${used}`; // never verifies
      const key = `${value.n}/${value.d} ${used}`;
      // A claim other than the value never verifies: keep it apart from the consistent answers.
      return claimed === null || (value.d === 1n && value.n === BigInt(claimed)) ? key : `${key} =${claimed}`;
    },

    attempts(problem, rng, failures) {
      const { numbers, target } = problem.data;
      const failed: FailedAttempt[] = [];
      const seen = new Set<string>();
      for (let tries = 0; failed.length < failures && tries < GREEDY_TRIES; tries++) {
        const miss = greedyAttempt(numbers, target, rng);
        // Reordering the same numbers to the same value is the same miss, not a new attempt.
        const key = `${leaves(miss.expr).sort((a, b) => a - b)}=${miss.value}`;
        if (miss.value === target || seen.has(key)) continue;
        seen.add(key);
        failed.push({ attempt: `${show(miss.expr)}=${miss.value}`, error: `${miss.value} != ${target}` });
      }
      // The same search usually gets there; the exhaustive solver covers shapes it cannot build.
      let solution: Expr | null = null;
      for (let tries = 0; !solution && tries < 50; tries++) {
        const hit = greedyAttempt(numbers, target, rng);
        if (hit.value === target) solution = hit.expr;
      }
      solution ??= solveCountdown(numbers, target, rng);
      if (!solution) throw new Error(`countdown: ${problem.prompt} has no solution`);
      const answer = show(solution);
      return { failed, attempt: `${answer}=${target}`, answer };
    },

    check(problem, answer) {
      return `${answer}=${problem.data.target}`;
    },
  };
  return task;
}
