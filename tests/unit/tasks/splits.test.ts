import { describe, expect, it } from 'vitest';
import { Prng } from '../../../util/prng';
import { createArithmetic } from '../../../tasks/arithmetic';
import { createCountdown } from '../../../tasks/countdown';
import { solveCountdown } from '../../../tasks/countdown-search';
import { show } from '../../../tasks/expr';
import { getTask } from '../../../tasks/registry';
import { SplitConfigSchema } from '../../../tasks/config';
import { poolOf, splitOf } from '../../../tasks/splits';
import { problemStream, sampleProblems, type StreamOptions } from '../../../tasks/stream';
import { problemId, type Problem } from '../../../tasks/types';
import { ConfigError } from '../../../util/errors';

describe('splits and pools', () => {
  it('partition distinct problems in the configured proportions', () => {
    const rng = new Prng(3);
    const task = getTask('arithmetic');
    const distinct = new Map<string, Problem>();
    while (distinct.size < 20_000) {
      const p = task.generate(rng, 2 + rng.int(5));
      distinct.set(p.id, p);
    }
    const counts = { train: 0, val: 0, test: 0, sft: 0, rl: 0 };
    for (const p of distinct.values()) {
      counts[splitOf(p)]++;
      const pool = poolOf(p);
      expect(pool === null).toBe(splitOf(p) !== 'train');
      if (pool) counts[pool]++;
    }
    const n = distinct.size;
    // 4 standard deviations of a binomial proportion at n = 20,000 is about 0.009 at p = 0.1.
    expect(Math.abs(counts.val / n - 0.1)).toBeLessThan(0.009);
    expect(Math.abs(counts.test / n - 0.1)).toBeLessThan(0.009);
    expect(Math.abs(counts.sft / counts.train - 0.5)).toBeLessThan(0.016);
    expect(counts.sft + counts.rl).toBe(counts.train);

    const custom = SplitConfigSchema.parse({ val: 0.2, test: 0.3, sft: 0.25 });
    const share = (pred: (p: Problem) => boolean) => [...distinct.values()].filter(pred).length / n;
    expect(Math.abs(share((p) => splitOf(p, custom) === 'test') - 0.3)).toBeLessThan(0.015);
    expect(Math.abs(share((p) => poolOf(p, custom) === 'sft') - 0.5 * 0.25)).toBeLessThan(0.015);
    expect(() => SplitConfigSchema.parse({ val: 0.5, test: 0.5 })).toThrow();
  });

  it('depend only on content, so the same problem from any seed lands in the same place', () => {
    const prompt = '3 5 7 10 -> 22';
    const a = { id: problemId('countdown', prompt) };
    expect(a.id).toMatch(/^[0-9a-f]{16}$/);
    expect(splitOf(a)).toBe(splitOf({ id: problemId('countdown', prompt) }));
    expect(problemId('arithmetic', prompt)).not.toBe(a.id);
  });
});

describe('problem streams', () => {
  const base: StreamOptions = { task: 'countdown', split: 'train', seed: 1, difficulty: { min: 3, max: 4 } };

  it('yield only the requested split or pool, each problem once, and never overlap', () => {
    const ids = new Map<string, string>();
    for (const task of ['countdown', 'arithmetic'] as const) {
      for (const [split, pool] of [
        ['train', 'sft'],
        ['train', 'rl'],
        ['val', undefined],
        ['test', undefined],
      ] as const) {
        const difficulty = task === 'countdown' ? { min: 3, max: 6 } : { min: 1, max: 8 };
        const ps = sampleProblems(300, { task, split, pool, seed: 7, difficulty });
        const label = `${split}/${pool}`;
        expect(ps).toHaveLength(300);
        expect(new Set(ps.map((p) => p.id)).size).toBe(300);
        for (const p of ps) {
          expect(p.task).toBe(task);
          expect(splitOf(p)).toBe(split);
          if (pool) expect(poolOf(p)).toBe(pool);
          expect(p.difficulty).toBeGreaterThanOrEqual(difficulty.min);
          expect(p.difficulty).toBeLessThanOrEqual(difficulty.max);
          expect(ids.get(p.id) ?? label).toBe(label);
          ids.set(p.id, label);
        }
      }
    }
  });

  it('are deterministic by seed', () => {
    expect(sampleProblems(50, base)).toEqual(sampleProblems(50, base));
    expect(sampleProblems(50, { ...base, seed: 2 })).not.toEqual(sampleProblems(50, base));
    const stream = problemStream(base);
    expect(Array.from({ length: 20 }, () => stream.next().value)).toEqual(sampleProblems(20, base));
  });

  it('refuse a pool outside train and report an exhausted problem space', () => {
    expect(() => sampleProblems(1, { ...base, split: 'val', pool: 'rl' })).toThrow(/only in split train/);
    // Difficulty 1 has at most 12 * 12 * 3 = 432 problems, about 43 of them in test.
    expect(() => sampleProblems(100, { task: 'arithmetic', split: 'test', seed: 1, difficulty: 1 })).toThrow(/exhausted/);
    // In a range, the used-up level drops out and the others carry on.
    const mixed = sampleProblems(200, { task: 'arithmetic', split: 'test', seed: 1, difficulty: { min: 1, max: 2 } });
    const easy = mixed.filter((p) => p.difficulty === 1).length;
    expect(easy).toBeGreaterThan(20);
    expect(easy).toBeLessThan(70);
    expect(() => sampleProblems(1, { ...base, difficulty: { min: 4, max: 3 } })).toThrow(/difficulty/);
  });

  it("exhausted: 'repeat' replays a used-up level in its first order and keeps the mix of levels", () => {
    const opts = { task: 'arithmetic', split: 'test', seed: 1, difficulty: { min: 1, max: 2 }, exhausted: 'repeat' } as const;
    const mixed = sampleProblems(600, opts);
    const easy = mixed.filter((p) => p.difficulty === 1);
    // Uniform over two levels: about 300 of 600, far more than the ~43 distinct easy test problems.
    expect(easy.length).toBeGreaterThan(250);
    expect(easy.length).toBeLessThan(350);
    const distinct = [...new Map(easy.map((p) => [p.id, p])).values()];
    expect(distinct.length).toBeLessThan(60);
    expect(easy.slice(distinct.length, 2 * distinct.length)).toEqual(distinct);
    expect(sampleProblems(600, opts)).toEqual(mixed);
    expect(() => sampleProblems(100, { ...opts, difficulty: 1, exhausted: 'repeat' })).not.toThrow();
  });
});

describe('generators', () => {
  it('countdown: difficulty is the count of numbers; numbers and target follow the config', () => {
    const rng = new Prng(4);
    const task = createCountdown({ maxNumber: 9, minTarget: 30, maxTarget: 60 });
    for (let i = 0; i < 300; i++) {
      const d = 3 + (i % 4);
      const p = task.generate(rng, d);
      const { numbers, target } = p.data;
      expect(numbers).toHaveLength(d);
      expect(p.difficulty).toBe(d);
      expect(numbers).toEqual([...numbers].sort((a, b) => a - b));
      for (const v of numbers) expect(v >= 1 && v <= 9).toBe(true);
      expect(target >= 30 && target <= 60 && !numbers.includes(target)).toBe(true);
      expect(p.prompt).toBe(`${numbers.join(' ')} -> ${target}`);
      expect(p.id).toBe(problemId('countdown', p.prompt));
      // Solvable: the solver's answer passes the verifier, which shares no code with it.
      expect(task.verify(p, show(solveCountdown(numbers, target, rng)!))).toBe(true);
    }
    expect(() => task.generate(rng, 7)).toThrow(ConfigError);
    expect(() => createCountdown({ minTarget: 50, maxTarget: 10 })).toThrow();
  });

  it('countdown solver finds solutions exactly when they exist', () => {
    expect(solveCountdown([2, 2, 2], 100)).toBeNull();
    expect(solveCountdown([1, 1, 1, 1], 17)).toBeNull();
    const numbers = [3, 7, 25, 50, 75, 100]; // the famous 952
    const found = solveCountdown(numbers, 952)!;
    const problem = { task: 'countdown' as const, id: '', prompt: '', difficulty: 6, data: { numbers, target: 952 } };
    expect(createCountdown().verify(problem, show(found))).toBe(true);
  });

  it('arithmetic: difficulty is the number of operations and values stay within bounds', () => {
    const rng = new Prng(6);
    const task = createArithmetic({ maxOperand: 9, maxAbs: 99 });
    for (let i = 0; i < 500; i++) {
      const d = 1 + (i % 8);
      const p = task.generate(rng, d);
      expect(p.prompt.match(/[+\-*]/g)).toHaveLength(d);
      expect(p.difficulty).toBe(d);
      for (const n of p.prompt.match(/\d+/g)!) expect(Number(n) >= 1 && Number(n) <= 9).toBe(true);
      expect(new Function(`return (${p.prompt});`)() + 0).toBe(p.data.value);
      expect(Math.abs(p.data.value)).toBeLessThanOrEqual(99);
    }
    expect(() => task.generate(rng, 0)).toThrow(ConfigError);
  });

  it('registry names the known tasks when asked for an unknown one', () => {
    expect(getTask('countdown').name).toBe('countdown');
    expect(() => getTask('sudoku')).toThrow('unknown task "sudoku"; known tasks: countdown, arithmetic');
  });
});
