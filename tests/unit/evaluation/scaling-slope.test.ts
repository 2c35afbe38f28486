import { describe, expect, it } from 'vitest';
import { olsSlope, scalingSlopes, type SlopePoint } from '../../../evaluation/scaling-slope';

const point = (label: string, budget: number, correct: number[]): SlopePoint => ({
  label,
  budget,
  untruncated: false,
  correct,
  samples: 2,
});
const full = (label: string, medianReasoning: number): SlopePoint => ({
  label,
  budget: 99,
  untruncated: true,
  medianReasoning,
  correct: [2, 2, 2, 2],
  samples: 2,
});

describe('inference-scaling slope', () => {
  it('olsSlope is the least-squares slope', () => {
    expect(olsSlope([0, 1, 2], [1, 3, 5])).toBe(2);
    // x mean 1.5, y mean 2.25: sxy = (−1.5)(−1.25) + (−0.5)(0.75) + (0.5)(−0.25) + (1.5)(0.75) = 2.5, sxx = 5
    expect(olsSlope([0, 1, 2, 3], [1, 3, 2, 3])).toBeCloseTo(0.5, 12);
  });

  it('measures the rise where truncation bites, per median length; a higher but flat curve has slope 0', () => {
    const points = [
      // SFT: median 10; budgets 5 and 10 are fractions 0.5 and 1; flat at 50%. The 15-token point lies past its median.
      point('sft', 5, [1, 1, 1, 1]),
      point('sft', 10, [1, 1, 1, 1]),
      point('sft', 15, [0, 0, 0, 0]),
      full('sft', 10),
      // RL: median 20; from 25% to 75% of problems solved between half and all of its median: slope (0.75 − 0.25) / 0.5 = 1.
      point('rl 100%', 10, [0, 0, 1, 1]),
      point('rl 100%', 20, [2, 2, 1, 1]),
      full('rl 100%', 20),
      // Higher everywhere (100%) but flat.
      point('rl 50%', 4, [2, 2, 2, 2]),
      point('rl 50%', 8, [2, 2, 2, 2]),
      full('rl 50%', 8),
    ];
    const [sft, rl, level] = scalingSlopes(points, 7);
    expect(sft).toMatchObject({ label: 'sft', fractions: [0.5, 1], slope: { mean: 0, lo: 0, hi: 0, n: 4 } });
    expect(sft.vsSft).toBeUndefined();
    expect(rl.label).toBe('rl 100%');
    expect(rl.slope.mean).toBeCloseTo(1, 12);
    expect(rl.vsSft!.mean).toBeCloseTo(1, 12);
    // Every resample keeps a rise in 0..2 (problems either gain 1 or lose 0.5 per half median): the interval sits inside it.
    expect(rl.slope.lo!).toBeGreaterThanOrEqual(-1);
    expect(rl.slope.hi!).toBeLessThanOrEqual(2);
    expect(level).toMatchObject({ label: 'rl 50%', slope: { mean: 0, lo: 0, hi: 0 } });
    expect(scalingSlopes(points, 7)).toEqual([sft, rl, level]);
  });

  it('leaves out checkpoints without per-problem counts or two budgets under the median', () => {
    const old: SlopePoint[] = [
      { label: 'sft', budget: 8, untruncated: false },
      { label: 'sft', budget: 16, untruncated: false },
      full('sft', 10),
    ];
    expect(scalingSlopes(old, 1)).toEqual([]);
    expect(scalingSlopes([point('sft', 5, [1, 1, 1, 1]), point('sft', 20, [1, 1, 1, 1]), full('sft', 10)], 1)).toEqual([]);
  });
});
