import { describe, expect, it } from 'vitest';
import { applyHyperparameters, CampaignConfigSchema } from '../../../config/campaign';
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

describe('RL estimator and trick fields', () => {
  it("default to today's behaviour: RLOO, per-sequence sums, KL in the reward (k1), symmetric clip, no refill or overlong penalty", () => {
    const c = rlConfig();
    expect(c.advantage).toBe('rloo');
    expect(c.lossAgg).toBe('seq-mean-token-sum');
    expect(c.kl).toEqual({ placement: 'reward', estimator: 'k1' });
    expect(c.ppo.clipHigh).toBeUndefined();
    expect(c.ppo.dualClip).toBeUndefined();
    expect(c.dynamicSampling).toEqual({ enabled: false, maxTries: 3 });
    expect(c.overlong).toEqual({ bufferTokens: 0, penalty: 1 });
    expect('normalisation' in c).toBe(false);
  });

  it('older configs: normalisation maps to lossAgg unless lossAgg is set, and is dropped', () => {
    expect(rlConfig({ normalisation: 'sequence' }).lossAgg).toBe('seq-mean-token-sum');
    expect(rlConfig({ normalisation: 'token' }).lossAgg).toBe('token-mean');
    const both = rlConfig({ normalisation: 'token', lossAgg: 'seq-mean-token-mean' });
    expect(both.lossAgg).toBe('seq-mean-token-mean');
    expect('normalisation' in both).toBe(false);
    expect(() => rlConfig({ normalisation: 'bogus' as 'token' })).toThrow(/lossAgg/);
    // A stored campaign config, as histories hold it.
    const stored = CampaignConfigSchema.parse({ rl: { normalisation: 'token', promptsPerStep: 4 } });
    expect(stored.rl.lossAgg).toBe('token-mean');
  });

  it('refuses a dual clip c <= 1 and an overlong buffer longer than the length limit', () => {
    expect(() => rlConfig({ ppo: { dualClip: 1 } })).toThrow(/dualClip/);
    expect(rlConfig({ ppo: { clip: 0.2, clipHigh: 0.28, dualClip: 3 } }).ppo).toMatchObject({ clip: 0.2, clipHigh: 0.28, dualClip: 3 });
    expect(() => rlConfig({ maxNewTokens: 16, overlong: { bufferTokens: 17 } })).toThrow(/bufferTokens/);
  });

  it('are tunable between epochs; normalisation no longer is', () => {
    const base = CampaignConfigSchema.parse({});
    const next = applyHyperparameters(base, {
      'rl.lossAgg': 'token-mean',
      'rl.advantage': 'grpo',
      'rl.kl.placement': 'loss',
      'rl.kl.estimator': 'k3',
      'rl.ppo.clipHigh': 0.28,
      'rl.ppo.dualClip': 3,
      'rl.dynamicSampling.enabled': true,
      'rl.dynamicSampling.maxTries': 2,
      'rl.overlong.bufferTokens': 16,
      'rl.overlong.penalty': 0.5,
    });
    expect(next.rl).toMatchObject({
      lossAgg: 'token-mean',
      advantage: 'grpo',
      kl: { placement: 'loss', estimator: 'k3' },
      ppo: { clipHigh: 0.28, dualClip: 3 },
      dynamicSampling: { enabled: true, maxTries: 2 },
      overlong: { bufferTokens: 16, penalty: 0.5 },
    });
    expect(() => applyHyperparameters(base, { 'rl.normalisation': 'token' })).toThrow(/cannot be changed/);
  });
});
