import { describe, expect, it } from 'vitest';
import { Prng } from '../../../util/prng';
import { getTask } from '../../../tasks/registry';
import {
  ALPHABET,
  ANSWER_CUE,
  DEFAULT_TEACHER,
  countSteps,
  directTrace,
  extractAnswer,
  splitAnswer,
  traceChars,
  writeTrace,
} from '../../../tasks/teacher';
import type { Problem, TaskName, Trace } from '../../../tasks/types';
import { ProgrammaticTeacherSchema, type ProgrammaticTeacher } from '../../../tasks/config';

/** Independent of the task code: JS evaluates the (digits, + - * / and parentheses only) text. */
function jsEval(expr: string): number {
  expect(expr).toMatch(/^[\d+\-*/()]+$/);
  return new Function(`return (${expr});`)() as number;
}

function drawProblem(rng: Prng, name: TaskName, minDifficulty?: number): Problem {
  const task = getTask(name);
  const lo = minDifficulty ?? task.minDifficulty;
  return task.generate(rng, lo + rng.int(task.maxDifficulty - lo + 1));
}

function corpus(seed: number, n: number, config?: ProgrammaticTeacher) {
  const rng = new Prng(seed);
  return Array.from({ length: n }, (_, i) => {
    const problem = drawProblem(rng, i % 2 ? 'countdown' : 'arithmetic');
    return { problem, trace: writeTrace(problem, rng.fork(problem.id), config) };
  });
}

const CASES = corpus(2024, 10_000);

/** Reasoning lines, checking the advertised shape: (try, no:)* try, newline-terminated. */
function lines(trace: Trace): string[] {
  expect(trace.reasoning.endsWith('\n')).toBe(true);
  const out = trace.reasoning.slice(0, -1).split('\n');
  out.forEach((line, i) => expect(line.startsWith(i % 2 === 0 ? 'try ' : 'no: '), line).toBe(true));
  expect(out.length % 2).toBe(1);
  return out;
}

function checkCountdown(problem: Problem, trace: Trace, ls: string[]) {
  const { numbers, target } = problem.data as { numbers: number[]; target: number };
  expect(ls[ls.length - 1]).toBe(`try ${trace.answer}=${target}`);
  expect(trace.verification).toBe(`\nchk ${trace.answer}=${target} ok`);
  for (let i = 0; i + 1 < ls.length; i += 2) {
    const [expr, claimed] = ls[i].slice(4).split('=');
    const value = jsEval(expr);
    expect(String(value), ls[i]).toBe(claimed); // the search computed its attempt correctly...
    expect(value).not.toBe(target); // ...and it really misses
    const used = expr
      .match(/\d+/g)!
      .map(Number)
      .sort((a, b) => a - b);
    const pool = numbers.slice();
    for (const v of used) pool.splice(pool.indexOf(v) >>> 0, pool.includes(v) ? 1 : 0);
    expect(numbers.length - pool.length, `${ls[i]} uses only given numbers, once`).toBe(used.length);
    expect(ls[i + 1]).toBe(`no: ${value} != ${target}`);
  }
}

type Step = { a: number; op: string; b: number; result: number; text: string };

function steps(line: string): Step[] {
  return line
    .slice(4)
    .split(' ')
    .map((text) => {
      const m = /^(-?\d+)([+\-*])(-?\d+)=(-?\d+)$/.exec(text);
      expect(m, text).not.toBeNull();
      return { a: Number(m![1]), op: m![2], b: Number(m![3]), result: Number(m![4]), text };
    });
}

const truth = (s: Step) => jsEval(`${s.a}${s.op}(${s.b})`) + 0; // + 0 turns -0 into 0

function checkArithmetic(problem: Problem, trace: Trace, ls: string[]) {
  const value = jsEval(problem.prompt) + 0;
  const ops = problem.prompt.match(/[+\-*]/g)!.length;
  expect(Number(trace.answer)).toBe(value);
  expect(trace.verification).toBe(`\nchk ${problem.prompt}=${trace.answer} ok`);
  const corrected: string[] = [];
  ls.forEach((line, i) => {
    if (i % 2 === 1) return;
    const ss = steps(line);
    expect(ss.length).toBe(ops);
    // A step a reflection already corrected is never got wrong again.
    for (const s of ss) if (corrected.includes(`${s.a}${s.op}${s.b}`)) expect(s.result).toBe(truth(s));
    if (i === ls.length - 1) {
      for (const s of ss) expect(s.result, line).toBe(truth(s));
      expect(ss[ss.length - 1].result).toBe(value);
      return;
    }
    expect(ss[ss.length - 1].result, line).not.toBe(value);
    const wrong = ss.find((s) => s.result !== truth(s))!;
    expect(ls[i + 1]).toBe(`no: ${wrong.a}${wrong.op}${wrong.b} is ${truth(wrong)}, not ${wrong.result}`);
    corrected.push(`${wrong.a}${wrong.op}${wrong.b}`);
  });
}

describe('teacher traces (10,000 seeded problems)', () => {
  it('every trace verifies, fits, has the advertised shape and real, correctly named errors', () => {
    for (const { problem, trace } of CASES) {
      expect(trace, problem.prompt).not.toBeNull();
      const t = trace!;
      expect(getTask(problem.task).verify(problem, t.answer)).toBe(true);
      expect(t.answer).not.toMatch(/\n/);
      expect(traceChars(problem, t)).toBeLessThanOrEqual(DEFAULT_TEACHER.maxChars);
      const ls = lines(t);
      expect(new Set(ls.filter((l) => l.startsWith('try '))).size).toBe((ls.length + 1) / 2); // no repeats
      expect(t.failedAttempts).toBe((ls.length - 1) / 2);
      expect(t.steps).toBe(ls.length);
      expect(countSteps(t.reasoning)).toEqual({ attempts: t.failedAttempts + 1, reflections: t.failedAttempts, total: ls.length });
      expect(t.verification).toMatch(/^\nchk [^\n]+ ok$/);
      if (problem.task === 'countdown') checkCountdown(problem, t, ls);
      else checkArithmetic(problem, t, ls);
    }
  });

  it('uses exactly the characters of ALPHABET', () => {
    const seen = new Set<string>();
    for (const { problem, trace } of CASES)
      for (const c of problem.prompt + trace!.reasoning + trace!.answer + trace!.verification) seen.add(c);
    expect([...seen].sort().join('')).toBe([...ALPHABET].sort().join(''));
    for (const c of ALPHABET) expect(c === '\n' || (c >= ' ' && c <= '~')).toBe(true);
  });

  it('is deterministic by seed', () => {
    expect(corpus(2024, 300)).toEqual(CASES.slice(0, 300));
    expect(corpus(2025, 50)).not.toEqual(CASES.slice(0, 50));
  });

  it('draws the failed-attempt count from the configured weights (chi-square)', () => {
    const weights = [0.2, 0.3, 0.4, 0.1];
    const config = ProgrammaticTeacherSchema.parse({ failedAttemptWeights: weights, maxChars: 100_000 });
    const rng = new Prng(99);
    const n = 3000;
    const counts = [0, 0, 0, 0];
    for (let i = 0; i < n; i++) {
      // Arithmetic from 3 operations: one step per failure must be available to err in.
      const problem = drawProblem(rng, i % 2 ? 'countdown' : 'arithmetic', i % 2 ? undefined : 3);
      counts[writeTrace(problem, rng, config)!.failedAttempts]++;
    }
    const chi2 = counts.reduce((s, c, k) => s + (c - n * weights[k]) ** 2 / (n * weights[k]), 0);
    expect(chi2).toBeLessThan(16.27); // p = 0.001, 3 dof

    const twos = ProgrammaticTeacherSchema.parse({ failedAttemptWeights: [0, 0, 1] });
    const none = ProgrammaticTeacherSchema.parse({ failedAttemptWeights: [1] });
    for (let i = 0; i < 200; i++) {
      const problem = drawProblem(rng, 'countdown');
      expect(writeTrace(problem, rng, twos)!.failedAttempts).toBe(2);
      expect(writeTrace(problem, rng, none)!.reasoning).toMatch(/^try [^\n]+\n$/);
    }
  });

  it('drops failed attempts to fit maxChars and never emits longer', () => {
    const rng = new Prng(5);
    const config = ProgrammaticTeacherSchema.parse({ failedAttemptWeights: [0, 0, 0, 1], maxChars: 140 });
    const lengths = { fitted: 0, cut: 0, none: 0 };
    for (let i = 0; i < 400; i++) {
      const problem = drawProblem(rng, i % 2 ? 'countdown' : 'arithmetic', i % 2 ? undefined : 3);
      const trace = writeTrace(problem, rng, config);
      if (!trace) lengths.none++;
      else {
        expect(traceChars(problem, trace)).toBeLessThanOrEqual(140);
        if (trace.failedAttempts < 3) lengths.cut++;
        else lengths.fitted++;
      }
    }
    expect(lengths.cut).toBeGreaterThan(0);
    expect(lengths.fitted).toBeGreaterThan(0);
    expect(lengths.none).toBeGreaterThan(0); // long arithmetic that cannot fit even one attempt
    expect(writeTrace(drawProblem(rng, 'countdown'), rng, ProgrammaticTeacherSchema.parse({ maxChars: 10 }))).toBeNull();
  });

  it('writes direct (answer-only) traces for ablations', () => {
    const rng = new Prng(8);
    for (let i = 0; i < 200; i++) {
      const problem = drawProblem(rng, i % 2 ? 'countdown' : 'arithmetic');
      const trace = directTrace(problem, rng);
      expect(trace).toMatchObject({ reasoning: '', verification: '', failedAttempts: 0, steps: 0 });
      expect(getTask(problem.task).verify(problem, trace.answer)).toBe(true);
    }
  });
});

describe('reading model output', () => {
  it('counts reasoning steps, garbage lines included', () => {
    expect(countSteps('')).toEqual({ attempts: 0, reflections: 0, total: 0 });
    expect(countSteps('try 1+2=3\nno: 3 != 4\ntry 1+3=4\n')).toEqual({ attempts: 2, reflections: 1, total: 3 });
    expect(countSteps('try 1\nhmm\n\nno: x\ntry')).toEqual({ attempts: 1, reflections: 1, total: 4 });
  });

  it('extracts the answer after the last cue', () => {
    expect(extractAnswer(`try 1+3=4\n${ANSWER_CUE}1+3\nchk 1+3=4 ok`)).toBe('1+3');
    expect(extractAnswer(`${ANSWER_CUE}9\n${ANSWER_CUE} 1+3 `)).toBe('1+3');
    expect(extractAnswer('try 1+3=4\n')).toBeNull();
    expect(splitAnswer('-2\nchk 1-3=-2 ok')).toEqual({ answer: '-2', verification: '\nchk 1-3=-2 ok' });
    expect(splitAnswer('-2')).toEqual({ answer: '-2', verification: '' });
  });
});
