import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  formatN,
  mean,
  pairedBootstrap,
  pairedBySeed,
  sampleStd,
  standardError,
  tInterval,
  tQuantile,
  verdict,
  VERDICT_RULE,
} from '../../../evaluation/stats';

describe('mean, sampleStd, standardError', () => {
  it('use the n − 1 denominator, and call the spread of fewer than two values unknown (NaN), not zero', () => {
    expect(mean([1, 2, 3, 6])).toBe(3);
    expect(sampleStd([0, 0, 1, 1])).toBeCloseTo(Math.sqrt(1 / 3), 12);
    expect(standardError([0, 0, 1, 1])).toBeCloseTo(Math.sqrt(1 / 12), 12);
    expect(standardError([0.25, 0.25, 0.25])).toBe(0);
    expect(mean([])).toBeNaN();
    expect(sampleStd([1])).toBeNaN();
    expect(standardError([1])).toBeNaN();
  });
});

describe('tQuantile', () => {
  // Reference values: mpmath (30 digits), bisecting the exact CDF 1 − I_{df/(df+t²)}(df/2, 1/2) / 2.
  it.each([
    [0.975, 1, 12.7062047361747],
    [0.975, 2, 4.30265272974946],
    [0.975, 4, 2.77644510519779],
    [0.975, 30, 2.04227245630124],
    [0.975, 1000, 1.96233908082641],
    [0.975, 1e6, 1.95996635681411],
    [0.995, 10, 3.16927267261695],
    [0.9, 5, 1.47588404882448],
    [0.95, 3, 2.35336343480182],
    [0.999, 7, 4.78528962863833],
    [0.6, 2, 0.288675134594813],
    [0.975, 1.5, 6.01666310442793],
    [0.9999, 1, 3183.0987571185],
  ])('t(%f, df = %f) = %f to 1e-6', (p, df, t) => {
    expect(Math.abs(tQuantile(p, df) - t)).toBeLessThan(1e-6 * Math.max(1, t));
    expect(Math.abs(tQuantile(1 - p, df) + t)).toBeLessThan(1e-6 * Math.max(1, t));
  });

  it('df = Infinity is the normal; the median is 0; p and df out of range throw', () => {
    expect(Math.abs(tQuantile(0.975, Infinity) - 1.95996398454005)).toBeLessThan(1e-8);
    expect(tQuantile(0.5, 3)).toBe(0);
    expect(() => tQuantile(1, 3)).toThrow(RangeError);
    expect(() => tQuantile(0, 3)).toThrow(RangeError);
    expect(() => tQuantile(0.9, 0)).toThrow(RangeError);
  });
});

describe('tInterval', () => {
  it('is mean ± t_{0.975, n−1} × s/√n over seeds', () => {
    const r = tInterval([0.05, 0.06, 0.07]);
    const half = 4.30265272974946 * (0.01 / Math.sqrt(3));
    expect(r).toMatchObject({ n: 3, df: 2, level: 0.95 });
    expect(r.mean).toBeCloseTo(0.06, 12);
    expect(r.se).toBeCloseTo(0.01 / Math.sqrt(3), 12);
    expect(r.halfWidth).toBeCloseTo(half, 9);
    expect(r.lo).toBeCloseTo(0.06 - half, 9);
    expect(r.hi).toBeCloseTo(0.06 + half, 9);
    // A 90 % interval is narrower.
    expect(tInterval([0.05, 0.06, 0.07], 0.9).halfWidth).toBeLessThan(half);
  });

  it('gives no interval for one seed, and refuses none', () => {
    expect(tInterval([0.4])).toEqual({ n: 1, level: 0.95, mean: 0.4, df: 0, se: null, halfWidth: null, lo: null, hi: null });
    expect(() => tInterval([])).toThrow(RangeError);
    expect(() => tInterval([1, 2], 1)).toThrow(RangeError);
  });
});

describe('pairedBySeed', () => {
  it('is the t-interval of the per-seed differences b − a (df = seeds − 1)', () => {
    const r = pairedBySeed([0.2, 0.3, 0.25], [0.3, 0.45, 0.3]);
    const d = tInterval([0.1, 0.15, 0.05]);
    expect(r.df).toBe(2);
    expect(r.mean).toBeCloseTo(d.mean, 12);
    expect(r.lo).toBeCloseTo(d.lo!, 12);
    expect(() => pairedBySeed([1, 2], [1])).toThrow(/equal lengths/);
  });
});

describe('pairedBootstrap', () => {
  // 40 problems: B passes 10 more of them than A, and fails 2 that A passes.
  const a = Array.from({ length: 40 }, (_, i) => (i < 10 ? 0.25 : i < 12 ? 1 : 0.5));
  const b = Array.from({ length: 40 }, (_, i) => (i < 10 ? 1 : i < 12 ? 0.5 : 0.5));

  it('resamples problems with replacement from a seeded Prng: the same seed, the same interval', () => {
    const r = pairedBootstrap(a, b, { seed: 7 });
    expect(r).toEqual(pairedBootstrap(a, b, { seed: 7 }));
    // Pass rates on a coarse grid give grid-valued bounds, so another seed shows on continuous scores.
    const x = Array.from({ length: 30 }, (_, i) => Math.sin(1.7 * i));
    const y = x.map((v, i) => v + Math.cos(i));
    expect(pairedBootstrap(x, y, { seed: 8 }).bootstrap).not.toEqual(pairedBootstrap(x, y, { seed: 7 }).bootstrap);
    expect(r).toMatchObject({ n: 40, resamples: 10_000, seed: 7 });
    expect(r.meanDiff).toBeCloseTo((10 * 0.75 - 2 * 0.5) / 40, 12);
  });

  it('brackets the mean difference like the paired t-interval beside it', () => {
    const r = pairedBootstrap(a, b, { seed: 7 });
    expect(r.t.mean).toBe(r.meanDiff);
    expect(r.t.df).toBe(39);
    expect(r.bootstrap.lo!).toBeLessThan(r.meanDiff);
    expect(r.bootstrap.hi!).toBeGreaterThan(r.meanDiff);
    // With 40 problems the two 95 % intervals agree to within a fifth of their width.
    const width = r.t.hi! - r.t.lo!;
    expect(Math.abs(r.bootstrap.lo! - r.t.lo!)).toBeLessThan(width / 5);
    expect(Math.abs(r.bootstrap.hi! - r.t.hi!)).toBeLessThan(width / 5);
  });

  it('identical differences give a zero-width interval; one problem gives none; unequal lengths throw', () => {
    const same = pairedBootstrap([0, 0, 0], [0.5, 0.5, 0.5], { seed: 1, resamples: 100 });
    expect([same.bootstrap.lo, same.bootstrap.hi]).toEqual([0.5, 0.5]);
    const one = pairedBootstrap([0], [1], { seed: 1 });
    expect([one.bootstrap.lo, one.bootstrap.hi, one.t.lo]).toEqual([null, null, null]);
    expect(() => pairedBootstrap([0, 1], [1], { seed: 1 })).toThrow(/equal lengths/);
    expect(() => pairedBootstrap([0, 1], [1, 1], { seed: 1, resamples: 0 })).toThrow(RangeError);
  });
});

describe('verdict', () => {
  it('2 seeds with effects 0.05 and 0.07 (6 s.e. above zero) are inconclusive: t_{0.975,1} = 12.7 widens the interval across zero', () => {
    const r = tInterval([0.05, 0.07]);
    expect(r.mean / r.se!).toBeGreaterThan(2); // the old "beyond 2 standard errors" rule called this reproduced
    expect(r.lo!).toBeLessThan(0);
    expect(verdict(r, 'positive')).toBe('inconclusive');
  });

  it('3 seeds consistently positive with small spread are reproduced; the same against the claim is contradicted', () => {
    const r = tInterval([0.05, 0.06, 0.07]);
    expect(verdict(r, 'positive')).toBe('reproduced');
    expect(verdict(r, 'negative')).toBe('contradicted');
    const down = tInterval([-0.05, -0.06, -0.07]);
    expect(verdict(down, 'negative')).toBe('reproduced');
    expect(verdict(down, 'positive')).toBe('contradicted');
  });

  it('is inconclusive with one seed, when the interval touches zero, and for NaN effects; only the stated level is accepted', () => {
    expect(verdict(tInterval([0.5]), 'positive')).toBe('inconclusive');
    expect(verdict({ n: 3, level: 0.95, mean: 0.1, lo: 0, hi: 0.2 }, 'positive')).toBe('inconclusive');
    expect(verdict(tInterval([NaN, 0.1, 0.2]), 'positive')).toBe('inconclusive');
    expect(() => verdict(tInterval([0.05, 0.06, 0.07], 0.9), 'positive')).toThrow(/0\.95/);
    expect(VERDICT_RULE).toMatch(/95 %.*seeds − 1.*claimed side.*other side.*fewer than 2 seeds/);
  });
});

describe('formatN', () => {
  it('states seeds × problems × samples, singular where one, leaving out what is not given', () => {
    expect(formatN({ seeds: 3, problems: 500, samples: 4 })).toBe('n = 3 seeds × 500 problems × 4 samples');
    expect(formatN({ seeds: 1, problems: 1, samples: 1 })).toBe('n = 1 seed × 1 problem × 1 sample');
    expect(formatN({ seeds: 2 })).toBe('n = 2 seeds');
  });
});

describe('stats.ts', () => {
  it('imports nothing but the pure Prng, so workflow code may import it', () => {
    const src = readFileSync(new URL('../../../evaluation/stats.ts', import.meta.url), 'utf8');
    expect([...src.matchAll(/^import .* from '(.+)';$/gm)].map((m) => m[1])).toEqual(['../util/prng']);
  });
});
