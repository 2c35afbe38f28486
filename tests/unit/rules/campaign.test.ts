import { describe, expect, it } from 'vitest';
import { CampaignConfigSchema } from '../../../config/campaign';
import { resolveConfig } from '../../../config/presets';
import {
  anchorRefreshDue,
  datasetSpec,
  heldOutSpec,
  relativeBudgets,
  scalingCheckpoints,
  scalingEpochs,
  scalingSweep,
} from '../../../rules/campaign';

const rl = (mode: 'refresh' | 'ema' | 'frozen', refreshEveryEpochs: number, epochs: number) =>
  CampaignConfigSchema.parse({ rl: { epochs, anchor: { mode, refreshEveryEpochs } } }).rl;

describe('campaign rules', () => {
  it('anchor refresh: every E epochs in refresh mode, never after the last epoch', () => {
    expect([0, 1, 2, 3, 4, 5].map((e) => anchorRefreshDue(rl('refresh', 2, 5), e))).toEqual([false, false, true, false, true, false]);
    expect([1, 2, 3].map((e) => anchorRefreshDue(rl('refresh', 1, 3), e))).toEqual([true, true, false]);
    for (const mode of ['ema', 'frozen'] as const) expect(anchorRefreshDue(rl(mode, 1, 4), 1)).toBe(false);
  });

  it('scaling sweep: SFT and RL at about 30 / 60 / 100% of training, each at every budget and untruncated', () => {
    expect(scalingEpochs(10)).toEqual([3, 6, 10]);
    expect(scalingEpochs(2)).toEqual([1, 2]);
    expect(scalingEpochs(1)).toEqual([1]);
    expect(scalingEpochs(0)).toEqual([]);
    const sweep = scalingSweep([16, 64], scalingCheckpoints('sft', ['e1', 'e2', 'e3', 'e4', 'e5']));
    expect(sweep.map((p) => `${p.label}:${p.checkpoint}@${p.budget ?? 'full'}`)).toEqual([
      'sft:sft@16',
      'sft:sft@64',
      'sft:sft@full',
      'rl 40%:e2@16',
      'rl 40%:e2@64',
      'rl 40%:e2@full',
      'rl 60%:e3@16',
      'rl 60%:e3@64',
      'rl 60%:e3@full',
      'rl 100%:e5@16',
      'rl 100%:e5@64',
      'rl 100%:e5@full',
    ]);
  });

  it('relative budgets: fractions of the median reasoning length, whole tokens, at least 1, distinct and ascending', () => {
    expect(relativeBudgets(40, [0.25, 0.5, 0.75, 1, 1.5])).toEqual([10, 20, 30, 40, 60]);
    expect(relativeBudgets(5, [0.25, 0.5, 0.75, 1, 1.5])).toEqual([1, 3, 4, 5, 8]);
    expect(relativeBudgets(2, [0.1, 0.25, 0.5, 1])).toEqual([1, 2]);
  });

  it('held-out problems depend on the evaluation seed, not the training seed', () => {
    const a = resolveConfig({ preset: 'smoke', overrides: { seed: 1 } });
    const b = resolveConfig({ preset: 'smoke', overrides: { seed: 2 } });
    expect(heldOutSpec(a)).toEqual(heldOutSpec(b));
    expect(datasetSpec(a)).not.toEqual(datasetSpec(b));
  });
});
