import { describe, expect, it } from 'vitest';
import { applyHyperparameters, CampaignConfigSchema, HyperparameterError, parseAssignments } from '../../config/campaign';
import { presetNames, resolveConfig } from '../../config/presets';

describe('campaign config', () => {
  it('every preset validates; smoke is tiny and full uses the paper K = 64, tau = 1.2', () => {
    expect(presetNames()).toEqual(['full', 'quick', 'smoke']);
    for (const p of presetNames()) expect(() => resolveConfig({ preset: p })).not.toThrow();
    expect(resolveConfig({ preset: 'full' }).rl).toMatchObject({ samplesPerPrompt: 64, temperature: 1.2 });
    expect(resolveConfig({ preset: 'smoke' }).sft.steps).toBeLessThan(50);
  });

  it('a bad value names its path', () => {
    expect(() => resolveConfig({ preset: 'smoke', overrides: { rl: { samplesPerPrompt: 4, updateSamples: 8 } } })).toThrow(/rl\.updateSamples: updateSamples \(M\) must not exceed samplesPerPrompt \(K\)/);
    expect(() => resolveConfig({ overrides: { sft: { lr: 'fast' } } })).toThrow(/sft\.lr: Invalid input: expected number/);
    expect(() => resolveConfig({ overrides: { task: { name: 'chess' } } })).toThrow(/task\.name/);
    expect(() => resolveConfig({ overrides: { model: { dModel: 30, nHeads: 4 } } })).toThrow(/dModel must be divisible by nHeads/);
  });

  it('hyper-parameter changes: tunable keys only, validated, typed from key=value words', () => {
    const c = CampaignConfigSchema.parse({});
    const next = applyHyperparameters(c, parseAssignments(['rl.lr=0.0002', 'rl.temperature=1', 'rl.anchor.mode=ema']));
    expect(next.rl).toMatchObject({ lr: 0.0002, temperature: 1, anchor: { mode: 'ema' } });
    expect(c.rl.lr).not.toBe(0.0002); // the input config is not mutated
    expect(() => applyHyperparameters(c, { 'rl.lr': -1 })).toThrow(HyperparameterError);
    expect(() => applyHyperparameters(c, { 'rl.anchor.mode': 'sometimes' })).toThrow(/rl\.anchor\.mode/);
    expect(() => applyHyperparameters(c, { 'model.dModel': 8 })).toThrow(/"model\.dModel" cannot be changed while a campaign runs/);
    expect(() => parseAssignments(['rl.lr'])).toThrow(/expected key=value/);
  });
});
