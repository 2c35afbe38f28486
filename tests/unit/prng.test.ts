import { describe, expect, it } from 'vitest';
import { sampleStream } from '../../evaluation/evaluate';
import { Prng } from '../../util/prng';

describe('Prng', () => {
  it('is deterministic by seed and resumes exactly from its state', () => {
    const a = new Prng(42);
    for (let i = 0; i < 100; i++) a.next();
    const b = new Prng(a.state());
    const xs = Array.from({ length: 50 }, () => a.next());
    const ys = Array.from({ length: 50 }, () => b.next());
    expect(ys).toEqual(xs);
    expect(new Prng(1).next()).not.toEqual(new Prng(2).next());
  });

  it('int(n) is uniform (chi-square, 9 dof)', () => {
    const r = new Prng(7);
    const n = 10,
      draws = 100_000,
      counts = new Array(n).fill(0);
    for (let i = 0; i < draws; i++) counts[r.int(n)]++;
    const e = draws / n;
    const chi2 = counts.reduce((s, c) => s + (c - e) ** 2 / e, 0);
    expect(chi2).toBeLessThan(27.88); // p = 0.001 critical value for 9 dof
  });

  it('normal() has mean 0 and variance 1', () => {
    const r = new Prng(3);
    const xs = Array.from({ length: 50_000 }, () => r.normal());
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
    const v = xs.reduce((s, x) => s + (x - mean) ** 2, 0) / xs.length;
    expect(Math.abs(mean)).toBeLessThan(0.02);
    expect(Math.abs(v - 1)).toBeLessThan(0.03);
  });
});

describe('Prng.stream', () => {
  it('streams of different labels differ from their first draw, and their first draws are uniform', () => {
    const first = Array.from({ length: 2000 }, (_, i) => Prng.stream(7, `rollout ${i} 0`).next());
    expect(new Set(first).size).toBe(first.length);
    // Chi-square over 10 bins (9 dof): p = 0.001 at 27.9.
    const bins = new Array(10).fill(0);
    for (const u of first) bins[Math.floor(u * 10)]++;
    expect(bins.reduce((s, n) => s + (n - 200) ** 2 / 200, 0)).toBeLessThan(27.9);
    expect(Prng.stream(7, 'a').next()).toBe(Prng.stream(7, 'a').next());
    expect(Prng.stream(8, 'a').next()).not.toBe(Prng.stream(7, 'a').next());
    // Evaluation's per-sample streams are such streams: samples of a problem start from different draws.
    const draws = Array.from({ length: 8 }, (_, j) => sampleStream(3, 'p-1', j).next());
    expect(new Set(draws).size).toBe(8);
  });
});
