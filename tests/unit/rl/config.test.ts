import { describe, expect, it } from 'vitest';
import { rlConfig, rlLearningRate } from '../../../rl/config';

describe('rlLearningRate', () => {
  it('rises linearly over warmupSteps, then stays at lr', () => {
    const cfg = rlConfig({ lr: 1e-3, warmupSteps: 4 });
    expect([0, 1, 2, 3, 4, 50].map((s) => rlLearningRate(cfg, s))).toEqual([2.5e-4, 5e-4, 7.5e-4, 1e-3, 1e-3, 1e-3]);
  });

  it('no warmup: lr from the first step', () => {
    expect(rlLearningRate(rlConfig({ lr: 2e-4, warmupSteps: 0 }), 0)).toBe(2e-4);
  });
});
