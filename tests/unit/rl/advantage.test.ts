import { describe, expect, it } from 'vitest';
import { advantages, rlooAdvantages, shapeRewards, zeroVarianceGroups } from '../../../rl/advantage';
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

describe('advantage estimators (rl.advantage), by hand on 2 prompts x 4 samples', () => {
  // Task rewards [1, 0, 0, 1] and [1, 1, 1, 0]; KL sums d with group means 1.0 and 2.5; beta 0.1:
  // R = r - 0.1 (d - mean d) = [1.05, -0.05, 0.15, 0.85] and [1.15, 1.05, 0.95, -0.15].
  const r2 = [1, 0, 0, 1, 1, 1, 1, 0];
  const R = shapeRewards(r2, new Array(8).fill(0), d, K, beta);
  // Response lengths in tokens (reinforce_pp whitens over tokens).
  const lengths = [2, 4, 4, 2, 1, 3, 3, 1];
  const expectAll = (got: number[], want: number[]) => got.forEach((x, i) => expect(x).toBeCloseTo(want[i], 9));

  it('the shaped rewards they start from', () => expectAll(R, [1.05, -0.05, 0.15, 0.85, 1.15, 1.05, 0.95, -0.15]));

  it('rloo: (4 R_i - sum R) / 3, sums 2.0 and 3.0; the same bits as rlooAdvantages', () => {
    expectAll(advantages(R, K, 'rloo', lengths), [2.2 / 3, -2.2 / 3, -1.4 / 3, 1.4 / 3, 1.6 / 3, 0.4, 0.8 / 3, -1.2]);
    expect(advantages(R, K, 'rloo', lengths)).toEqual(rlooAdvantages(R, K));
  });

  it('dr_grpo: R - group mean (0.5 and 0.75)', () => {
    expectAll(advantages(R, K, 'dr_grpo', lengths), [0.55, -0.55, -0.35, 0.35, 0.4, 0.3, 0.2, -0.9]);
  });

  it('grpo: (R - mean) / (unbiased std + 1e-6), std = sqrt(0.85 / 3) = 0.5322906 and sqrt(1.1 / 3) = 0.6055301', () => {
    expectAll(
      advantages(R, K, 'grpo', lengths),
      [1.0332681391, -1.0332681391, -0.6575342703, 0.6575342703, 0.6605771682, 0.4954328761, 0.3302885841, -1.4862986284],
    );
  });

  it('reinforce_pp: R - group mean, whitened over the 20 response tokens: mu = -0.04, var = 3.878 / 19', () => {
    // sum_i n_i s_i = -1.8 + 1.0; sum_i n_i (s_i + 0.04)^2 = 0.6962 + 1.0404 + 0.3844 + 0.3042 + 0.1936 + 0.3468 + 0.1728 + 0.7396.
    expectAll(
      advantages(R, K, 'reinforce_pp', lengths),
      [1.3059450365, -1.1288677434, -0.6861745107, 0.8632518038, 0.973925112, 0.7525784956, 0.5312318793, -1.9035809007],
    );
    // Equal lengths: whitening over samples; the token weights are what move mu here.
    expect(advantages(R, K, 'reinforce_pp', new Array(8).fill(3))[0]).not.toBeCloseTo(1.3059450365, 3);
  });

  it('with the KL in the loss the task rewards enter as they are: rloo 2/3 and 1/3, grpo with std 1/sqrt(3) and 1/2', () => {
    expectAll(advantages(r2, K, 'rloo', lengths), [2 / 3, -2 / 3, -2 / 3, 2 / 3, 1 / 3, 1 / 3, 1 / 3, -1]);
    expectAll(
      advantages(r2, K, 'grpo', lengths),
      [0.8660239038, -0.8660239038, -0.8660239038, 0.8660239038, 0.499999, 0.499999, 0.499999, -1.499997],
    );
  });

  it('a flat group gets zero advantages from every estimator but reinforce_pp, which whitens it against the batch', () => {
    const R0 = [1, 0, 0, 1, 0.5, 0.5, 0.5, 0.5];
    for (const est of ['rloo', 'grpo', 'dr_grpo'] as const) expect(advantages(R0, K, est, lengths).slice(4)).toEqual([0, 0, 0, 0]);
    // Group 0's centred rewards weigh -2 over 12 tokens against the flat group's 0: mu = -0.1, so the flat group gets +0.1 / sigma.
    const flatGroup = advantages(R0, K, 'reinforce_pp', lengths).slice(4);
    expect(new Set(flatGroup).size).toBe(1);
    expect(flatGroup[0]).toBeGreaterThan(0.1);
    expect(() => advantages(R0, K, 'reinforce_pp', [1, 2])).toThrow(RangeError);
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
