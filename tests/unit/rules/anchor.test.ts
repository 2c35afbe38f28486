import { describe, expect, it } from 'vitest';
import { CampaignConfigSchema } from '../../../config/campaign';
import { anchorAfterEpoch } from '../../../rules/anchor';

const rl = (mode: 'refresh' | 'ema' | 'frozen') => CampaignConfigSchema.parse({ rl: { anchor: { mode } } }).rl;

describe('anchor after an RL epoch', () => {
  it('ema: the anchor the epoch blended replaces the one in force', () => {
    expect(anchorAfterEpoch(rl('ema'), 'sft', 'ema-e1')).toBe('ema-e1');
    expect(anchorAfterEpoch(rl('ema'), 'ema-e1', 'ema-e2')).toBe('ema-e2');
  });

  it('ema: an epoch that reports no anchor keeps the one in force', () => {
    expect(anchorAfterEpoch(rl('ema'), 'sft', undefined)).toBe('sft');
  });

  it('refresh and frozen: the epoch never moves the anchor, whatever it reports', () => {
    for (const mode of ['refresh', 'frozen'] as const) {
      expect(anchorAfterEpoch(rl(mode), 'sft', 'ema-e1')).toBe('sft');
      expect(anchorAfterEpoch(rl(mode), 'anchor-e2', undefined)).toBe('anchor-e2');
    }
  });
});
