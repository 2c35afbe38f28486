import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../../../config/presets';
import { rolloutShards } from '../../../rl/config';
import { ARMS, COST, matchBaseSampling, PlanError, ReproduceOptionsSchema, reproductionPlan } from '../../../reproduce/plan';

const quick = resolveConfig({ preset: 'quick' });
const plan = (o: object) => reproductionPlan(quick, ReproduceOptionsSchema.parse(o));
type Planned = ReturnType<typeof plan>['base'][0];
/** The messages of the options' refusal ('' when accepted). */
const refusal = (o: object) => {
  const r = ReproduceOptionsSchema.safeParse(o);
  return r.success ? '' : r.error.issues.map((i) => i.message).join('; ');
};
const rlOf = (p: ReturnType<typeof plan>, arm: string) => p.ablations.find((a) => a.arm === arm)!.config.rl;

describe('reproduction plan', () => {
  const p = plan({});
  const base = p.base[0].config;
  const responses = (c: Planned) =>
    c.config.rl.promptsPerStep * c.config.rl.samplesPerPrompt * c.config.rl.stepsPerEpoch * c.config.rl.epochs;

  it('defaults: 3 seeds, every arm per seed, sized to 10 hours on the reference machine, the options kept for the report', () => {
    expect(p.options).toEqual({ minutes: 600, seeds: [4, 5, 6] });
    expect(p.base.map((c) => c.seed)).toEqual([4, 5, 6]);
    expect(p.ablations).toHaveLength(3 * ARMS.length);
    expect(p.epochs).toBe(9);
    expect(p.estimatedMinutes).toBeGreaterThan(540);
    expect(p.estimatedMinutes).toBeLessThanOrEqual(600);
    // Larger steps than the 12-minute quick preset: at fixed B x K the K = 64 arm still draws 12 prompts per step.
    expect(base.rl).toMatchObject({
      promptsPerStep: 48,
      samplesPerPrompt: quick.rl.samplesPerPrompt,
      sampleBatch: 384,
      rollout: { processes: 2 },
    });
    expect(base.sft).toMatchObject({ ...quick.sft, batchSize: 64, microBatchSize: 32 });
    // The base keeps T1's ingredients: RLOO, KL and entropy bonus, one plain update per batch, no refill.
    expect(base.rl).toMatchObject({
      advantage: 'rloo',
      betaKl: quick.rl.betaKl,
      alphaEnt: quick.rl.alphaEnt,
      garbagePenalty: 1,
      anchor: { mode: 'refresh' },
      ppo: { enabled: false },
      dynamicSampling: { enabled: false },
    });
    // Ablations skip the scaling sweep; the base sweeps relative budgets on more problems than the preset.
    expect(p.ablations.every((a) => !a.config.eval.scaling.enabled)).toBe(true);
    expect(base.eval.scaling).toMatchObject({ enabled: true, problems: 150, fractions: quick.eval.scaling.fractions });
  });

  it("equal sampled responses: every arm but K at fixed B samples the base's B x K per step for the base's steps", () => {
    const fixedB = ['k4-fixed-b', 'k64-fixed-b'];
    for (const c of p.ablations.filter((a) => !fixedB.includes(a.arm))) expect(responses(c), c.arm).toBe(responses(p.base[0]));
    for (const c of p.ablations) expect(c.config.rl.epochs * c.config.rl.stepsPerEpoch, c.arm).toBe(p.epochs * p.stepsPerEpoch);
    expect(rlOf(p, 'k4')).toMatchObject({ samplesPerPrompt: 4, promptsPerStep: 192, updateSamples: 4 });
    expect(rlOf(p, 'k64')).toMatchObject({ samplesPerPrompt: 64, promptsPerStep: 12, updateSamples: 64 });
    // At fixed B: K / K_base times the responses (the claim about more samples per prompt, at more compute).
    expect(rlOf(p, 'k4-fixed-b')).toMatchObject({ samplesPerPrompt: 4, promptsPerStep: 48, updateSamples: 4 });
    expect(rlOf(p, 'k64-fixed-b')).toMatchObject({ samplesPerPrompt: 64, promptsPerStep: 48, updateSamples: 64 });
    expect(responses(p.ablations.find((a) => a.arm === 'k64-fixed-b')!)).toBe(4 * responses(p.base[0]));
    // 48 x 4 rows in calls of 384 would be one shard for 2 sampler processes: the calls shrink to one shard per process.
    for (const arm of ['k4', 'k64', 'k4-fixed-b', 'k64-fixed-b']) expect(rolloutShards(rlOf(p, arm)).length, arm).toBeGreaterThanOrEqual(2);
    expect(rlOf(p, 'k4-fixed-b').sampleBatch).toBe(96);
  });

  it('each arm changes only its own fields', () => {
    expect(rlOf(p, 'no-kl')).toMatchObject({ betaKl: 0, alphaEnt: quick.rl.alphaEnt });
    expect(rlOf(p, 'no-entropy')).toMatchObject({ betaKl: quick.rl.betaKl, alphaEnt: 0 });
    expect(rlOf(p, 'no-kl-no-entropy')).toMatchObject({ betaKl: 0, alphaEnt: 0 });
    // The estimator alone changes: the base's sequence sums keep the policy gradient's weight against the entropy bonus.
    expect(rlOf(p, 'grpo')).toMatchObject({ advantage: 'grpo', lossAgg: 'seq-mean-token-sum' });
    expect(rlOf(p, 'dr-grpo')).toMatchObject({ advantage: 'dr_grpo', lossAgg: 'seq-mean-token-sum' });
    // 4 passes over the batch, each one optimizer step over all of it as the base's single step is.
    expect(rlOf(p, 'ppo4-clip-higher').ppo).toEqual({ enabled: true, epochs: 4, clip: 0.2, clipHigh: 0.28, minibatch: 48 * 16 });
    expect(rlOf(p, 'refill').dynamicSampling).toEqual({ enabled: true, maxTries: 3 });
    expect(p.ablations.filter((a) => a.matchSampling).map((a) => a.arm)).toEqual(['refill', 'refill', 'refill']);
    expect(rlOf(p, 'frozen-anchor').anchor.mode).toBe('frozen');
    expect(rlOf(p, 'no-garbage-penalty').garbagePenalty).toBe(0);
    const { rl: _, eval: __, ...rest } = base;
    for (const a of p.ablations.filter((x) => x.seed === 1))
      expect({ ...a.config, rl: undefined, eval: undefined }).toEqual({ ...rest, rl: undefined, eval: undefined });
  });

  it("refill: B from the seed's base informative share, so that its refills sample about the base's responses", () => {
    const refill = p.ablations.find((a) => a.arm === 'refill')!.config;
    // Zero-variance shares 0.5 and 0.25: informative f = 0.625; up to 3 refills sample 1 + 0.375 + 0.375^2 + 0.375^3 = 1.568
    // prompts per informative group aimed at, so B = 48 / 1.568 = 30.6 -> 31; calls of 16 x 16 rows give each sampler process a shard.
    const matched = matchBaseSampling(refill, { config: base, epochs: [{ zeroVarianceGroups: 0.5 }, { zeroVarianceGroups: 0.25 }] });
    expect(matched.rl).toMatchObject({ promptsPerStep: 31, sampleBatch: 256, dynamicSampling: { enabled: true } });
    expect(rolloutShards(matched.rl)).toHaveLength(2);
    // No informative group at all: every try samples B again, 4 rounds in all.
    expect(matchBaseSampling(refill, { config: base, epochs: [{ zeroVarianceGroups: 1 }] }).rl.promptsPerStep).toBe(12);
    // All informative: nothing to refill, the base's B.
    expect(matchBaseSampling(refill, { config: base, epochs: [{ zeroVarianceGroups: 0 }] }).rl.promptsPerStep).toBe(48);
  });

  it('the estimate: sampled responses and update passes per step, evaluations per campaign, SFT and the sweep per seed', () => {
    const one = plan({ minutes: 150, arms: ['no-kl'] });
    const fixed = 3 * (COST.sftSeconds + COST.scalingSeconds + 3 * COST.evalSeconds);
    const perEpoch = 3 * 8 * COST.rlStepSeconds * 2;
    expect(one.epochs).toBe(Math.floor((150 * 60 - fixed) / perEpoch));
    expect(one.estimatedMinutes).toBeCloseTo((fixed + one.epochs * perEpoch) / 60, 9);
    // 4 passes repeat the update's share of a step; K = 64 at fixed B samples 4x the responses.
    const ppo = plan({ minutes: 300, arms: ['ppo4-clip-higher'] });
    const k64 = plan({ minutes: 300, arms: ['k64-fixed-b'] });
    const epochs = (steps: number) => Math.floor((300 * 60 - fixed) / (3 * 8 * COST.rlStepSeconds * steps));
    expect(ppo.epochs).toBe(epochs(1 + 1 - COST.updateShare + 4 * COST.updateShare));
    expect(k64.epochs).toBe(epochs(1 + 4));
  });

  it('more minutes buy more RL epochs; too few, too few seeds or unknown arms are refused naming the option', () => {
    expect(plan({ minutes: 900 }).epochs).toBeGreaterThan(p.epochs);
    expect(() => plan({ minutes: 100 })).toThrow(PlanError);
    expect(() => plan({ minutes: 100 })).toThrow(/give at least \d+/);
    expect(refusal({ seeds: [1, 2] })).toMatch(/seeds: at least 3/);
    expect(refusal({ seeds: [1, 2, 2] })).toMatch(/seeds: must be distinct/);
    expect(refusal({ arms: ['k8'] })).toMatch(/arms: no arm "k8"; arms are k4, k64/);
    expect(refusal({ arms: ['dr-grpo'] })).toMatch(/arms: dr-grpo is judged against grpo; list grpo too/);
    expect(refusal({ minutes: -1 })).toMatch(/minutes: must be positive/);
    expect(plan({ minutes: 200, arms: ['no-kl'] }).ablations.map((a) => `${a.seed}/${a.arm}`)).toEqual(['4/no-kl', '5/no-kl', '6/no-kl']);
  });
});
