/**
 * Arithmetic: evaluate a multi-step integer expression over + - * with parentheses, e.g.
 * `12+7*(3-5)`; the answer is the integer (`-2`). Difficulty is the number of operations.
 */
import { z } from 'zod';
import type { Prng } from '../util/prng';
import { bin, countOps, num, parseExpr, show, type Expr, type Op } from './expr';
import { checkDifficulty, DIFFICULTY, giveUp, problemId, type FailedAttempt, type Problem, type Task } from './types';

export const ArithmeticConfigSchema = z.object({
  maxOperand: z.number().int().min(2).max(999).default(12),
  /** Bound on every intermediate value, keeping steps short enough for small models. */
  maxAbs: z.number().int().min(10).default(999),
});

export interface ArithmeticData {
  value: number;
}

/** One evaluation step as written, `a op b = result`; result may be a slip. */
interface Step {
  a: number;
  op: Op;
  b: number;
  result: number;
}

const OPS: Op[] = ['+', '-', '*'];
const MAX_REJECTED = 20_000;
const ATTEMPT_TRIES = 200;

function apply(op: Op, a: number, b: number): number {
  if (op === '+') return a + b;
  if (op === '-') return a - b;
  if (op === '*') return a * b + 0; // -5*0 is -0 in JS; keep problem data free of it
  throw new Error(`arithmetic: unexpected operator ${op}`);
}

/**
 * Evaluates bottom-up, left operand first (the order a person works through the written
 * expression), letting `write` decide what result each step records; later steps use what was written.
 */
function evaluateSteps(e: Expr, write: (a: number, op: Op, b: number, index: number) => number): Step[] {
  const steps: Step[] = [];
  const visit = (node: Expr): number => {
    if (node.kind === 'num') return node.value;
    const a = visit(node.left);
    const b = visit(node.right);
    const result = write(a, node.op, b, steps.length);
    steps.push({ a, op: node.op, b, result });
    return result;
  };
  visit(e);
  return steps;
}

const showStep = (s: Step): string => `${s.a}${s.op}${s.b}=${s.result}`;

/** A plausible wrong result: off by one or ten, a wrong digit, a lost sign, a times-table neighbour. */
function slip(a: number, op: Op, b: number, rng: Prng): number {
  const r = apply(op, a, b);
  const digits = String(Math.abs(r));
  const at = rng.int(digits.length);
  const lowest = at === 0 && digits.length > 1 ? 1 : 0;
  let digit = lowest + rng.int(9 - lowest);
  if (String(digit) >= digits[at]) digit++;
  const wrongDigit = Math.sign(r || 1) * Number(digits.slice(0, at) + digit + digits.slice(at + 1));
  const options = [r + 1, r - 1, wrongDigit];
  if (op === '-' || a < 0 || b < 0) options.push(-r);
  if (op === '*') options.push(r + a, r - a, r + b, r - b);
  else options.push(r + 10, r - 10);
  return rng.pick(options.filter((v) => v !== r));
}

function parseArithmeticAnswer(text: string): number | null {
  const m = /^=?\s*([+-]?)\s*([1-9]\d{0,14}|0)$/.exec(text.replace(/[−–]/g, '-').trim());
  if (!m) return null;
  return m[1] === '-' ? -Number(m[2]) : Number(m[2]);
}

export function createArithmetic(config: z.input<typeof ArithmeticConfigSchema> = {}): Task<ArithmeticData, number> {
  const cfg = ArithmeticConfigSchema.parse(config);

  const randomTree = (rng: Prng, ops: number): Expr => {
    if (ops === 0) return num(1 + rng.int(cfg.maxOperand));
    const left = rng.int(ops);
    return bin(rng.pick(OPS), randomTree(rng, left), randomTree(rng, ops - 1 - left));
  };

  const task: Task<ArithmeticData, number> = {
    name: 'arithmetic',
    minDifficulty: DIFFICULTY.arithmetic.min,
    maxDifficulty: DIFFICULTY.arithmetic.max,

    generate(rng, difficulty, accept) {
      checkDifficulty(task, difficulty);
      for (let rejected = 0; ; rejected++) {
        if (rejected > MAX_REJECTED) giveUp('arithmetic', 'no acceptable problem', rejected);
        const prompt = show(randomTree(rng, difficulty));
        const tree = parseExpr(prompt)!;
        const steps = evaluateSteps(tree, (a, op, b) => apply(op, a, b));
        if (steps.some((s) => Math.abs(s.result) > cfg.maxAbs)) continue;
        const value = steps[steps.length - 1].result;
        const candidate: Problem<ArithmeticData> = {
          task: 'arithmetic',
          id: problemId('arithmetic', prompt),
          prompt,
          difficulty: countOps(tree),
          data: { value },
        };
        if (!accept || accept(candidate)) return candidate;
      }
    },

    parseAnswer: parseArithmeticAnswer,

    verify(problem, answerText) {
      return parseArithmeticAnswer(answerText) === problem.data.value;
    },

    attempts(problem, rng, failures, { slipRate }) {
      // The tree a reader sees: parsing the prompt fixes the grouping the printer left implicit.
      const tree = parseExpr(problem.prompt)!;
      const ops = countOps(tree);
      const failed: FailedAttempt[] = [];
      // A step a reflection corrected is not got wrong again, so later attempts err elsewhere
      // (a problem of s steps has at most s failed attempts).
      const corrected = new Set<string>();
      for (let tries = 0; failed.length < failures && tries < ATTEMPT_TRIES; tries++) {
        // Each step slips at slipRate; after half the tries the last step always slips (if it
        // may), so a low rate still yields failures. Attempts that end right are redrawn.
        const forced = tries >= ATTEMPT_TRIES / 2 ? ops - 1 : -1;
        const slipped: number[] = [];
        const steps = evaluateSteps(tree, (a, op, b, i) => {
          if (corrected.has(`${a}${op}${b}`) || (i !== forced && rng.next() >= slipRate)) return apply(op, a, b);
          slipped.push(i);
          return slip(a, op, b, rng);
        });
        if (!slipped.length || steps[ops - 1].result === problem.data.value) continue;
        const s = steps[slipped[0]];
        corrected.add(`${s.a}${s.op}${s.b}`);
        failed.push({ attempt: steps.map(showStep).join(' '), error: `${s.a}${s.op}${s.b} is ${apply(s.op, s.a, s.b)}, not ${s.result}` });
      }
      const steps = evaluateSteps(tree, (a, op, b) => apply(op, a, b));
      const answer = String(problem.data.value);
      return { failed, attempt: steps.map(showStep).join(' '), answer };
    },

    check(problem, answer) {
      return `${problem.prompt}=${answer}`;
    },
  };
  return task;
}
