import { describe, expect, it } from 'vitest';
import { CampaignConfigSchema } from '../../../config/campaign';
import { epochCommitsAnchor } from '../../../rules/anchor';
import { anchorFromCheckpoint, emptyFilterError, rlStepBase, rolloutPlan, sftCurveEntry } from '../../../rules/stages';

const rl = (anchor: 'refresh' | 'ema' | 'frozen') => CampaignConfigSchema.parse({ rl: { anchor: { mode: anchor } } }).rl;

describe('stage rules', () => {
  it('rollouts: on workers in workers mode, in sampler processes with more than one, else in the training process', () => {
    expect(rolloutPlan({ mode: 'workers', processes: 1 })).toBe('workers');
    expect(rolloutPlan({ mode: 'local', processes: 4 })).toBe('processes');
    expect(rolloutPlan({ mode: 'local', processes: 1 })).toBe('in-process');
  });

  it('SFT curve: evaluated every evalEvery steps and at the last, a loss point every steps/60 steps', () => {
    const entries = (steps: number, evalEvery: number) =>
      Array.from({ length: steps }, (_, i) => sftCurveEntry({ steps, evalEvery }, i + 1)).map((e) => e?.[0] ?? '.');
    // 10 steps: stride 1, every step has a point; evaluations at 4, 8 and the last.
    expect(entries(10, 4).join('')).toBe('lllelllele');
    // 300 steps: stride 5.
    const e = entries(300, 100);
    expect(e.filter((x) => x === 'e').length).toBe(3);
    expect(e.filter((x) => x === 'l').length).toBe(60 - 3);
    expect(sftCurveEntry({ steps: 300, evalEvery: 100 }, 5)).toBe('loss');
    expect(sftCurveEntry({ steps: 300, evalEvery: 100 }, 6)).toBeNull();
    expect(sftCurveEntry({ steps: 300, evalEvery: 100 }, 300)).toBe('eval');
  });

  it('prompt filter: an empty result is refused, naming what to raise', () => {
    expect(emptyFilterError({ maxPassRate: 0.5 }, 8, 3)).toBeNull();
    expect(emptyFilterError({ maxPassRate: 0.5 }, 8, 0)).toBe(
      'rl.filter: none of 8 candidate prompts has a pass rate in (0, 0.5]; raise rl.filter.maxPassRate or rl.filter.candidates',
    );
  });

  it('RL epoch start: an RL state (with its anchor) keeps its EMA anchor and its step count; SFT starts both afresh', () => {
    const fromRl = { step: 12, arrays: { anchor: {} } };
    const fromSft = { step: 40 };
    expect(anchorFromCheckpoint(rl('ema'), fromRl)).toBe(false);
    expect(anchorFromCheckpoint(rl('ema'), fromSft)).toBe(true);
    expect(anchorFromCheckpoint(rl('refresh'), fromRl)).toBe(true);
    expect(anchorFromCheckpoint(rl('frozen'), fromRl)).toBe(true);
    expect(rlStepBase(fromRl)).toBe(12);
    expect(rlStepBase(fromSft)).toBe(0);
    expect([epochCommitsAnchor(rl('ema')), epochCommitsAnchor(rl('refresh')), epochCommitsAnchor(rl('frozen'))]).toEqual([
      true,
      false,
      false,
    ]);
  });
});
