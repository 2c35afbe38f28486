import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../../../config/presets';
import { ARMS, PlanError, ReproduceOptionsSchema, reproductionPlan } from '../../../reproduce/plan';

const quick = resolveConfig({ preset: 'quick' });
const plan = (o: object) => reproductionPlan(quick, ReproduceOptionsSchema.parse(o));

describe('reproduction plan', () => {
  it('every arm samples B * K responses per step for the same steps as the base: equal sampling compute', () => {
    const p = plan({ minutes: 150, seeds: [1, 2] });
    expect(p.base.map((c) => c.seed)).toEqual([1, 2]);
    expect(p.ablations).toHaveLength(2 * ARMS.length);
    const compute = (c: (typeof p.base)[0]) =>
      c.config.rl.promptsPerStep * c.config.rl.samplesPerPrompt * c.config.rl.stepsPerEpoch * c.config.rl.epochs;
    for (const c of [...p.base, ...p.ablations]) expect(compute(c)).toBe(compute(p.base[0]));
    const perStep = p.base[0].config.rl.promptsPerStep * p.base[0].config.rl.samplesPerPrompt;
    // Larger steps than the 12-minute quick preset: the K = 64 arm still draws 12 prompts per step.
    expect(p.base[0].config.rl).toMatchObject({
      promptsPerStep: 48,
      samplesPerPrompt: quick.rl.samplesPerPrompt,
      sampleBatch: 384,
      rollout: { processes: 2 },
    });
    expect(p.base[0].config.sft).toMatchObject({ ...quick.sft, batchSize: 64, microBatchSize: 32 });
    expect(p.ablations.find((a) => a.arm === 'k4')!.config.rl).toMatchObject({
      samplesPerPrompt: 4,
      promptsPerStep: perStep / 4,
      updateSamples: 4,
    });
    expect(p.ablations.find((a) => a.arm === 'k64')!.config.rl).toMatchObject({
      samplesPerPrompt: 64,
      promptsPerStep: 12,
      updateSamples: 64,
    });
    expect(p.ablations.find((a) => a.arm === 'no-kl')!.config.rl.betaKl).toBe(0);
    expect(p.ablations.find((a) => a.arm === 'frozen-anchor')!.config.rl.anchor.mode).toBe('frozen');
    // Ablations change only their arm's fields (and skip the scaling sweep); the T1 ingredients stay on in the base.
    expect(p.base[0].config.rl).toMatchObject({
      betaKl: quick.rl.betaKl,
      alphaEnt: quick.rl.alphaEnt,
      garbagePenalty: 1,
      anchor: { mode: 'refresh' },
    });
    expect(p.ablations.every((a) => !a.config.eval.scaling.enabled)).toBe(true);
    expect(p.base[0].config.eval.scaling.budgets[0]).toBeLessThan(16);
    expect(p.base[0].config.eval.scaling.budgets.at(-1)).toBeGreaterThan(64);
    expect(p.estimatedMinutes).toBeLessThanOrEqual(150);
  });

  it('more minutes buy more RL epochs; too few are refused with the minimum', () => {
    expect(plan({ minutes: 300 }).epochs).toBeGreaterThan(plan({ minutes: 150 }).epochs);
    expect(() => plan({ minutes: 10 })).toThrow(PlanError);
    expect(() => plan({ minutes: 10 })).toThrow(/give at least \d+/);
    expect(() => ReproduceOptionsSchema.parse({ seeds: [1] })).toThrow(/at least 2 seeds/);
    expect(() => ReproduceOptionsSchema.parse({ arms: ['k8'] })).toThrow(/arms/);
    expect(plan({ minutes: 100, arms: ['no-kl'] }).ablations.map((a) => a.arm)).toEqual(['no-kl', 'no-kl']);
  });
});
