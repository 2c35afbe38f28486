import { describe, expect, it } from 'vitest';
import { rlooAdvantages, shapeRewards, zeroVarianceGroups } from '../../../rl/advantage';
import { rlConfig } from '../../../rl/config';
import { selectForUpdate } from '../../../rl/select';
import { Prng } from '../../../util/prng';

// Two prompts x four samples; group 1 is all wrong, so only its KL term differs.
const K = 4;
const r = [1, 0, 0, 1, 0, 0, 0, 0];
const p = [0, -1, 0, 0, 0, 0, 0, 0];
const d = [0.5, 1.5, -0.5, 2.5, 1, 2, 3, 4];
const beta = 0.1;

describe('shaped rewards and RLOO advantages', () => {
  it('match hand-computed values on 2 prompts x 4 samples', () => {
    // group means of d: 1.0 and 2.5
    const R = shapeRewards(r, p, d, K, beta);
    const wantR = [1 + 0.05, -1 - 0.05, 0.15, 1 - 0.15, 0.15, 0.05, -0.05, -0.15];
    R.forEach((x, i) => expect(x).toBeCloseTo(wantR[i], 12));
    // A_i = R_i - mean of the other three
    const A = rlooAdvantages(R, K);
    const wantA = [1.05 + 0.05 / 3, -1.05 - 2.05 / 3, 0.15 - 0.85 / 3, 0.85 - 0.15 / 3, 0.2, 0.2 / 3, -0.2 / 3, -0.2];
    A.forEach((x, i) => expect(x).toBeCloseTo(wantA[i], 12));
  });

  it('advantages sum to zero within every group', () => {
    const rng = new Prng(3);
    for (const k of [2, 4, 16, 64]) {
      const R = Array.from({ length: 5 * k }, () => rng.normal());
      const A = rlooAdvantages(R, k);
      for (let g = 0; g < 5; g++) expect(Math.abs(A.slice(g * k, (g + 1) * k).reduce((s, x) => s + x, 0))).toBeLessThan(1e-12);
    }
  });

  it('KL term vanishes when d is constant in a group (e.g. policy == anchor)', () => {
    expect(shapeRewards(r, p, new Array(8).fill(0), K, beta)).toEqual(r.map((x, i) => x + p[i]));
    expect(shapeRewards(r, p, new Array(8).fill(7), K, 1)).toEqual(r.map((x, i) => x + p[i]));
  });

  it('rejects a sample count that is not a multiple of K', () => {
    expect(() => rlooAdvantages([1, 2, 3], 2)).toThrow(RangeError);
  });

  it('flags groups whose task rewards are all equal', () => {
    expect(
      zeroVarianceGroups(
        r.map((x, i) => x + p[i]),
        K,
      ),
    ).toEqual([false, true]);
    expect(zeroVarianceGroups([-1, -1, 1, 1], 2)).toEqual([true, true]);
  });
});

describe('update selection', () => {
  const right = [true, false, false, false, false, false, true, true, false, false, false, false];

  it('takes all K by default and skips zero-variance groups', () => {
    const cfg = rlConfig({ samplesPerPrompt: 4 });
    const all = selectForUpdate(right, [false, false, true], 4, cfg, new Prng(1));
    expect(all.map((c) => c.index)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(all.every((c) => c.weight === 1)).toBe(true);
  });

  it('balanced: alternates right and wrong, topping up from the larger class', () => {
    const cfg = rlConfig({ samplesPerPrompt: 4, updateSamples: 2 });
    for (let seed = 0; seed < 20; seed++) {
      const got = selectForUpdate(right, [false, false, false], 4, cfg, new Prng(seed)).map((c) => c.index);
      expect(got.length).toBe(6);
      expect(got.slice(0, 2)).toContain(0); // the only right sample of group 0
      expect(got.slice(2, 4).filter((i) => right[i]).length).toBe(1); // group 1: one right, one wrong
      expect(got.slice(4).every((i) => i >= 8 && i < 12)).toBe(true);
    }
    const three = selectForUpdate(right, [false, true, true], 4, rlConfig({ samplesPerPrompt: 4, updateSamples: 3 }), new Prng(5)).map(
      (c) => c.index,
    );
    expect(three).toHaveLength(3);
    expect(three).toContain(0);
  });

  it('random: M distinct samples of each group, deterministic by seed', () => {
    const cfg = rlConfig({ samplesPerPrompt: 4, updateSamples: 3, updateSelection: 'random' });
    const a = selectForUpdate(right, [false, false, false], 4, cfg, new Prng(9)).map((c) => c.index);
    expect(a).toEqual(selectForUpdate(right, [false, false, false], 4, cfg, new Prng(9)).map((c) => c.index));
    expect(new Set(a).size).toBe(9);
    expect(selectForUpdate(right, [false, false, false], 4, cfg, new Prng(9)).every((c) => c.weight === 4 / 3)).toBe(true);
    [0, 1, 2].forEach((g) => expect(a.filter((i) => Math.floor(i / 4) === g)).toHaveLength(3));
  });

  // Unbiased: for every sample, P(chosen) * weight = 1, so the weighted update equals the all-K update in expectation.
  for (const [selection, M] of [
    ['balanced', 2],
    ['balanced', 5],
    ['random', 3],
  ] as const) {
    it(`${selection} M = ${M} of K = 8: E[weight * chosen] = 1 for every sample (Monte Carlo)`, () => {
      const K8 = 8;
      const oneRight = [true, false, false, false, false, false, false, false];
      const cfg = rlConfig({ samplesPerPrompt: K8, updateSamples: M, updateSelection: selection });
      const sum = new Array<number>(K8).fill(0);
      const trials = 4000;
      const rng = new Prng(3);
      for (let t = 0; t < trials; t++) {
        const got = selectForUpdate(oneRight, [false], K8, cfg, rng);
        expect(got.reduce((s, c) => s + c.weight, 0)).toBeCloseTo(K8, 9);
        got.forEach((c) => (sum[c.index] += c.weight));
      }
      // Without weights the rare right sample would be over-represented (balanced picks it every time).
      sum.forEach((x) => expect(Math.abs(x / trials - 1)).toBeLessThan(0.08));
    });
  }

  it('config refuses M > K', () => {
    expect(() => rlConfig({ samplesPerPrompt: 4, updateSamples: 5 })).toThrow(/updateSamples/);
  });
});
