import { describe, expect, it } from 'vitest';
import { Transformer } from '../../../model/transformer';
import { rlConfig } from '../../../rl/config';
import { RlTrainer, summarise } from '../../../rl/epoch';
import { filterPool } from '../../../rl/filter';
import { PromptPool, type PromptSource } from '../../../rl/prompts';
import type { RlStepMetrics } from '../../../rl/step';
import { sampleProblems } from '../../../tasks/stream';
import { Prng } from '../../../util/prng';
import { tinyConfig, useBackend } from '../model/helpers';
import { expectSameState, resumeMidEpoch, untimed } from './resume-helper';

useBackend();

const source: PromptSource = { task: 'arithmetic', seed: 7, difficulty: { min: 1, max: 2 } };
// Every moving part on: updates on flat groups, PPO minibatches (Prng shuffles), an EMA anchor.
const cfg = rlConfig({
  stepsPerEpoch: 2,
  promptsPerStep: 2,
  samplesPerPrompt: 4,
  updateSamples: 3,
  maxNewTokens: 20,
  lr: 1e-3,
  dropZeroVariance: false,
  ppo: { enabled: true, epochs: 2, minibatch: 4 },
  anchor: { mode: 'ema', emaLambda: 0.5 },
  microBatch: 4,
  sampleBatch: 8,
});

function fresh(): RlTrainer {
  const policy = new Transformer(tinyConfig({ contextLength: 40 }), new Prng(1));
  return RlTrainer.create(policy, policy.clone(), cfg, source, 11);
}

describe('PromptPool', () => {
  it('position i is the i-th problem of the seeded RL pool stream; a filtered pool wraps over its kept positions', () => {
    const all = sampleProblems(12, { ...source, split: 'train', pool: 'rl' });
    expect(new PromptPool(source).take(3, 5)).toEqual(all.slice(3, 8));
    const kept = new PromptPool({ ...source, kept: [1, 4, 9] });
    expect(kept.take(2, 4)).toEqual([all[9], all[1], all[4], all[9]]);
    expect(() => new PromptPool({ ...source, kept: [] })).toThrow(/kept no prompts/);
  });

  it('filterPool drops unsolved prompts: an untrained model passes nothing, so nothing is kept and the pool refuses it', async () => {
    const model = new Transformer(tinyConfig({ contextLength: 40 }), new Prng(1));
    const progress: number[] = [];
    const cfg = rlConfig({ maxNewTokens: 8, sampleBatch: 4, filter: { samples: 2, candidates: 5 } });
    const filtered = await filterPool(model, source, cfg, new Prng(2), (done) => progress.push(done));
    expect(filtered).toEqual({ kept: [], passRates: [0, 0, 0, 0, 0] });
    expect(progress).toEqual([2, 4, 5]);
    expect(() => new PromptPool({ ...source, kept: filtered.kept })).toThrow(/kept no prompts/);
    model.dispose();
  });
});

describe('RlTrainer', () => {
  it('advances the cursor by B prompts a step and rolls the epoch after stepsPerEpoch steps', async () => {
    const t = fresh();
    const seen: number[] = [];
    const r = await t.runEpoch((_, tr) => void seen.push(tr.cursor.prompt));
    expect(seen).toEqual([2, 4]);
    expect(t.cursor).toEqual({ epoch: 1, stepInEpoch: 0, prompt: 4 });
    expect(r.epoch).toBe(1);
    expect(r.steps).toHaveLength(2);
    expect(r.summary.accuracy).toBeCloseTo((r.steps[0].accuracy + r.steps[1].accuracy) / 2, 12);
    expect(t.state().step).toBe(2);
    t.dispose();
  });

  it('resumes from a serialised mid-epoch state exactly: same weights, anchor, moments and metrics, bit for bit', async () => {
    const a = fresh();
    await a.runEpoch();
    const last = (await a.runEpoch()).steps.at(-1)!;
    const want = a.state();
    a.dispose();

    const c = await resumeMidEpoch(fresh, (state) => RlTrainer.fromState(state, cfg, source));
    expect(c.cursor).toEqual({ epoch: 1, stepInEpoch: 1, prompt: 6 });
    const rest = await c.runEpoch();
    expect(rest.steps).toHaveLength(1);
    expect(untimed(rest.steps[0])).toEqual(untimed(last));
    expectSameState(c.state(), want);
    c.dispose();
  });

  it('summarise skips steps without an update for loss and gradNorm, and recomputes rates from totals', () => {
    const base = untimed({} as RlStepMetrics);
    const s1 = {
      ...base,
      loss: 2,
      gradNorm: 1,
      sampledTokens: 100,
      samplingSeconds: 1,
      updatePositions: 10,
      updateSeconds: 1,
    } as RlStepMetrics;
    const s2 = {
      ...base,
      loss: NaN,
      gradNorm: NaN,
      sampledTokens: 300,
      samplingSeconds: 3,
      updatePositions: 0,
      updateSeconds: 0,
    } as RlStepMetrics;
    const s = summarise([s1, s2]);
    expect([s.loss, s.gradNorm, s.samplingTokensPerS, s.updateTokensPerS]).toEqual([2, 1, 100, 10]);
  });
});
