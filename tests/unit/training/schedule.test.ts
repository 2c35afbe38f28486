import { describe, expect, it } from 'vitest';
import { lrAt } from '../../../training/schedule';

describe('lrAt', () => {
  const s = { lr: 1e-3, minLr: 1e-4, warmupSteps: 10, totalSteps: 110 };
  it('warms up linearly, decays by a cosine to minLr, then stays there', () => {
    expect(lrAt(0, s)).toBeCloseTo(1e-4, 12);
    expect(lrAt(4, s)).toBeCloseTo(5e-4, 12);
    expect(lrAt(9, s)).toBeCloseTo(1e-3, 12);
    expect(lrAt(10, s)).toBeCloseTo(1e-3, 12);
    expect(lrAt(60, s)).toBeCloseTo(5.5e-4, 12); // half way: mean of lr and minLr
    expect(lrAt(110, s)).toBeCloseTo(1e-4, 12);
    expect(lrAt(500, s)).toBe(1e-4);
    for (let t = 11; t < 110; t++) expect(lrAt(t, s)).toBeLessThan(lrAt(t - 1, s));
  });
  it('works without warmup', () => {
    expect(lrAt(0, { ...s, warmupSteps: 0 })).toBeCloseTo(1e-3, 12);
  });
});
