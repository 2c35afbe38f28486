import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { generate } from '../../../model/sample';
import { encodePrompt } from '../../../model/tokenizer';
import { Transformer } from '../../../model/transformer';
import { rlConfig, type RlConfig } from '../../../rl/config';
import { responseLogProbs } from '../../../rl/loss';
import { rlStep, type RlStepMetrics } from '../../../rl/step';
import { sampleProblems } from '../../../tasks/stream';
import { AdamW } from '../../../training/adamw';
import { Prng } from '../../../util/prng';
import { tinyConfig, useBackend } from '../model/helpers';

useBackend();

const modelCfg = tinyConfig({ contextLength: 48 });
const problems = sampleProblems(6, { task: 'arithmetic', split: 'train', pool: 'rl', seed: 3, difficulty: 2 });
// An untrained model earns nothing, so keep the flat groups: their advantages are KL-only but nonzero.
const cfg = rlConfig({
  samplesPerPrompt: 4,
  promptsPerStep: 2,
  maxNewTokens: 24,
  lr: 1e-3,
  microBatch: 3,
  sampleBatch: 5,
  dropZeroVariance: false,
});

function setup(seed: number, over: Partial<RlConfig> = {}) {
  const policy = new Transformer(modelCfg, new Prng(seed));
  const anchor = policy.clone();
  const config = { ...cfg, ...over };
  const optimizer = new AdamW(policy.variables, policy.names, config.optimizer);
  const rng = new Prng(seed + 100);
  const step = (s: number) => rlStep({ policy, anchor, optimizer, problems: problems.slice(2 * s, 2 * s + 2), config, lr: config.lr, rng });
  const dispose = () => [policy, anchor, optimizer].forEach((x) => x.dispose());
  return { policy, anchor, step, dispose };
}

const TIMING: (keyof RlStepMetrics)[] = ['samplingTokensPerS', 'updateTokensPerS', 'samplingSeconds', 'scoringSeconds', 'updateSeconds'];
const untimed = (m: RlStepMetrics) => Object.fromEntries(Object.entries(m).filter(([k]) => !TIMING.includes(k as keyof RlStepMetrics)));

describe('rlStep', () => {
  beforeAll(() => expect(problems).toHaveLength(6));

  it('KL term is zero when policy == anchor: at T = 1.2 the sampler and the scorer give the same log-probs', async () => {
    const { policy, anchor, step, dispose } = setup(1);
    const prompts = problems.slice(0, 2).map((p) => encodePrompt(p.prompt));
    const outs = await generate(policy, [...prompts, ...prompts], { maxNewTokens: 24, temperature: 1.2 }, new Prng(5));
    const seqs = outs.map((o, i) => ({ tokens: [...prompts[i % 2], ...o.tokens], promptLength: prompts[i % 2].length }));
    const anchorLp = responseLogProbs(anchor, seqs, 3, 1.2);
    outs.forEach((o, i) => expect(Math.abs(o.logProbs.reduce((a, b) => a + b, 0) - anchorLp.sums[i])).toBeLessThan(1e-4));
    const m = await step(0);
    expect(Math.abs(m.kl)).toBeLessThan(1e-4);
    // after the update the policy has moved away from the anchor
    expect(Math.abs((await step(1)).kl)).toBeGreaterThan(1e-3);
    dispose();
  });

  it('metrics are consistent: rates in [0,1], garbage reasons add up, counts match the config', async () => {
    const { step, dispose } = setup(2);
    const m = await step(0);
    for (const k of ['accuracy', 'garbageRate', 'zeroVarianceGroups'] as const) expect(m[k]).toBeGreaterThanOrEqual(0);
    expect(m.garbageTruncated + m.garbageRepetition + m.garbageUnparseable).toBeCloseTo(m.garbageRate, 12);
    expect(m.reward).toBeCloseTo(m.accuracy - m.garbageRate, 12);
    expect(m.updateSamples).toBe(8);
    expect(m.optimizerSteps).toBe(1);
    expect(m.sampledTokens).toBeCloseTo(8 * m.responseLength, 9);
    expect(m.responseLength).toBeLessThanOrEqual(24);
    expect(m.entropy).toBeGreaterThan(0);
    dispose();
  });

  it('garbage penalty: p = -garbagePenalty for garbage; 0 turns it off', async () => {
    // An untrained model's responses are cut at the length limit: all garbage.
    const run = async (over: Partial<RlConfig>) => {
      const s = setup(7, over);
      const m = await s.step(0);
      s.dispose();
      return m;
    };
    const on = await run({});
    const off = await run({ garbagePenalty: 0 });
    expect(on.garbageRate).toBe(1);
    expect(on.reward).toBeCloseTo(on.accuracy - 1, 12);
    expect(off.garbageRate).toBe(1);
    expect(off.reward).toBeCloseTo(off.accuracy, 12);
  });

  it("reports the mean difficulty of the step's prompts", async () => {
    const mixed = [1, 3].map((d) => sampleProblems(1, { task: 'arithmetic', split: 'train', pool: 'rl', seed: 3, difficulty: d })[0]);
    const policy = new Transformer(modelCfg, new Prng(4));
    const anchor = policy.clone();
    const optimizer = new AdamW(policy.variables, policy.names, cfg.optimizer);
    const m = await rlStep({ policy, anchor, optimizer, problems: mixed, config: cfg, lr: cfg.lr, rng: new Prng(5) });
    expect(mixed.map((q) => q.difficulty)).toEqual([1, 3]);
    expect(m.difficulty).toBe(2);
    [policy, anchor, optimizer].forEach((x) => x.dispose());
  });

  it('drops zero-variance groups: an untrained model scores the same on every sample, so nothing is updated', async () => {
    const { policy, step, dispose } = setup(3, { dropZeroVariance: true });
    const before = policy.getWeights();
    const m = await step(0);
    expect(m.zeroVarianceGroups).toBe(1);
    expect([m.updateSamples, m.optimizerSteps]).toEqual([0, 0]);
    expect(policy.getWeights()).toEqual(before);
    dispose();
  });

  it('is deterministic by seed, and a different seed gives a different run', async () => {
    const run = async (seed: number, over: Partial<RlConfig> = {}) => {
      const s = setup(seed, over);
      const ms = [untimed(await s.step(0)), untimed(await s.step(1))];
      const w = s.policy.getWeights();
      s.dispose();
      return { ms, w };
    };
    const a = await run(4);
    expect(await run(4)).toEqual(a);
    expect((await run(5)).ms).not.toEqual(a.ms);
    const ppo = { ppo: { enabled: true, clip: 0.2, epochs: 2, minibatch: 3 } };
    const p = await run(4, ppo);
    expect(p.ms[0].optimizerSteps).toBe(6); // 2 epochs x ceil(8 / 3)
    expect(await run(4, ppo)).toEqual(p);
  });

  it('KL estimators: k2 and k3 vanish with policy == anchor as k1 does; in the loss the shaped reward carries no KL', async () => {
    for (const estimator of ['k2', 'k3'] as const) {
      const s = setup(1, { kl: { placement: 'reward', estimator }, betaKl: 0.5 });
      const m = await s.step(0);
      expect(m.klPenalty).toBeLessThan(1e-4);
      expect(m.klLoss).toBeNaN();
      expect((await s.step(1)).klPenalty).toBeGreaterThan(0); // the policy moved
      s.dispose();
    }
    const s = setup(1, { kl: { placement: 'loss', estimator: 'k3' }, betaKl: 0.5 });
    const m0 = await s.step(0);
    expect(m0.klPenalty).toBe(0);
    expect(Math.abs(m0.klLoss)).toBeLessThan(1e-6);
    const m1 = await s.step(1);
    expect(m1.klLoss).toBeGreaterThan(0);
    expect(m1.klPenalty).toBe(0);
    s.dispose();
  });

  it('overlong penalty: added to the task reward of responses near the length limit, on top of the garbage penalty', async () => {
    const run = async (over: Partial<RlConfig>) => {
      const s = setup(7, over);
      const m = await s.step(0);
      s.dispose();
      return m;
    };
    const off = await run({});
    const on = await run({ overlong: { bufferTokens: 4, penalty: 0.5 } });
    expect(off.overlongPenalty).toBe(0);
    expect(on.sampledTokens).toBe(off.sampledTokens); // the same samples
    expect(on.garbageTruncated).toBeGreaterThan(0.5); // most ran to the limit: -0.5 each
    expect(on.overlongPenalty).toBeLessThanOrEqual(-0.5 * on.garbageTruncated);
    expect(on.overlongPenalty).toBeGreaterThanOrEqual(-0.5);
    expect(on.reward).toBeCloseTo(off.reward + on.overlongPenalty, 12);
  });

  it('every advantage estimator and loss aggregation runs a step, deterministically', async () => {
    const cases: Partial<RlConfig>[] = [
      { advantage: 'grpo', lossAgg: 'seq-mean-token-mean' },
      { advantage: 'dr_grpo', lossAgg: 'seq-mean-token-sum-norm' },
      { advantage: 'reinforce_pp', lossAgg: 'token-mean' },
    ];
    for (const over of cases) {
      const run = async () => {
        const s = setup(4, over);
        const m = untimed(await s.step(0));
        const w = s.policy.getWeights();
        s.dispose();
        return { m, w };
      };
      const a = await run();
      expect(Number.isFinite(a.m.loss)).toBe(true);
      expect(await run()).toEqual(a);
    }
  });

  it('leaks no tensors across steps', async () => {
    const { step, dispose } = setup(6);
    await step(0); // builds the model's cached causal mask
    const n = tf.memory().numTensors;
    for (const s of [1, 2]) {
      await step(s);
      expect(tf.memory().numTensors).toBe(n);
    }
    dispose();
  });
});
