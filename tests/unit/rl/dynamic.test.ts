import { describe, expect, it } from 'vitest';
import type { Sample } from '../../../model/sample';
import { ANS, EOS, encode } from '../../../model/tokenizer';
import { Transformer } from '../../../model/transformer';
import { rlConfig, type RlConfig } from '../../../rl/config';
import { RlTrainer } from '../../../rl/epoch';
import { PromptPool, type PromptSource } from '../../../rl/prompts';
import { judge } from '../../../rl/reward';
import { localRollouts, type RolloutBatch, type Rollouts } from '../../../rl/rollout';
import { rlStep } from '../../../rl/step';
import { directTrace } from '../../../tasks/teacher';
import type { Problem } from '../../../tasks/types';
import { AdamW } from '../../../training/adamw';
import { Prng } from '../../../util/prng';
import { tinyConfig, useBackend } from '../model/helpers';
import { expectSameState, resumeMidEpoch, untimed } from './resume-helper';

useBackend();

// Dynamic sampling (DAPO): flat groups are replaced by further prompts from the pool.
const source: PromptSource = { task: 'arithmetic', seed: 7, difficulty: { min: 1, max: 1 } };
const pool = new PromptPool(source);
const K = 4;
const keyOf = (ids: readonly number[]) => ids.join(',');
const byPrompt = new Map(pool.take(0, 200).map((p): [string, Problem] => [keyOf([1, ...encode(p.prompt), 2]), p]));

/** The right answer line, stopped: r = 1. */
const right = (p: Problem) => [ANS, ...encode(directTrace(p, new Prng(1)).answer), EOS];
/** Stopped without an answer line: unparseable garbage, r + p = -1. */
const WRONG = [...encode('no idea'), EOS];
const fake = (tokens: number[]): Sample => ({
  tokens,
  logProbs: tokens.map((_, t) => -1 - 0.1 * t),
  entropies: tokens.map(() => 1),
  stopped: true,
});

describe('dynamic sampling', () => {
  const cfg = rlConfig({
    promptsPerStep: 3,
    samplesPerPrompt: K,
    maxNewTokens: 16,
    lr: 1e-3,
    microBatch: 6,
    sampleBatch: 8,
    dynamicSampling: { enabled: true, maxTries: 3 },
  });

  /** Rows of step-level prompts 1, 2 and 4 all wrong (flat); the others have one right answer. */
  function stub(calls: { first: number; count: number }[]): Rollouts {
    return async (b: RolloutBatch) => {
      calls.push({ first: b.first, count: b.prompts.length });
      return b.prompts.flatMap((ids, j) => {
        const flat = [1, 2, 4].includes(b.first + j);
        return Array.from({ length: K }, (_, k) => fake(!flat && k === 0 ? right(byPrompt.get(keyOf(ids))!) : WRONG));
      });
    };
  }

  async function step(over: Partial<RlConfig['dynamicSampling']>) {
    const policy = new Transformer(tinyConfig({ contextLength: 48 }), new Prng(3));
    const anchor = policy.clone();
    const optimizer = new AdamW(policy.variables, policy.names, cfg.optimizer);
    const config = { ...cfg, dynamicSampling: { ...cfg.dynamicSampling, ...over } };
    const calls: { first: number; count: number }[] = [];
    let next = 3;
    const asked: number[] = [];
    const m = await rlStep({
      policy,
      anchor,
      optimizer,
      problems: pool.take(0, 3),
      moreProblems: (n) => (asked.push(n), (next += n), pool.take(next - n, n)),
      config,
      lr: 1e-3,
      rng: new Prng(4),
      rollouts: stub(calls),
    });
    [policy, anchor, optimizer].forEach((x) => x.dispose());
    return { m, calls, asked, next };
  }

  it('the stub judges as intended: one right answer makes a group informative', () => {
    const p = pool.take(0, 1)[0];
    expect(judge(p, right(p), cfg.garbage)).toMatchObject({ correct: true, garbage: null });
    expect(judge(p, WRONG, cfg.garbage)).toMatchObject({ correct: false, garbage: 'unparseable' });
  });

  it('refills the flat groups with further prompts until B informative groups, numbering rows on', async () => {
    // Round 1: prompts 0-2, only 0 informative -> ask 2; round 2: prompts 3-4, 3 informative -> ask 1; round 3: prompt 5.
    const { m, calls, asked, next } = await step({});
    expect(calls).toEqual([
      { first: 0, count: 3 },
      { first: 3, count: 2 },
      { first: 5, count: 1 },
    ]);
    expect(asked).toEqual([2, 1]);
    expect([m.promptsSampled, m.samplingRounds, next]).toEqual([6, 3, 6]);
    expect(m.zeroVarianceGroups).toBe(0.5); // 3 of the 6 sampled groups
    expect(m.updateSamples).toBe(3 * K); // the informative groups only
    expect(m.optimizerSteps).toBe(1);
    expect(m.accuracy).toBeCloseTo(3 / 24, 12); // over every sampled response
  });

  it('stops after maxTries extra rounds and trains on the informative groups it has', async () => {
    const { m, calls } = await step({ maxTries: 1 });
    expect(calls.map((c) => c.count)).toEqual([3, 2]);
    expect([m.promptsSampled, m.samplingRounds, m.updateSamples]).toEqual([5, 2, 2 * K]);
    const none = await step({ maxTries: 0 });
    expect([none.m.promptsSampled, none.m.samplingRounds, none.m.updateSamples]).toEqual([3, 1, K]);
  });

  it('off: one round of B prompts, flat groups left to dropZeroVariance', async () => {
    const { m, calls } = await step({ enabled: false });
    expect(calls).toEqual([{ first: 0, count: 3 }]);
    expect([m.promptsSampled, m.samplingRounds, m.updateSamples]).toEqual([3, 1, K]);
  });

  it('needs the pool to refill from', async () => {
    const policy = new Transformer(tinyConfig({ contextLength: 48 }), new Prng(3));
    const optimizer = new AdamW(policy.variables, policy.names, cfg.optimizer);
    const run = rlStep({ policy, anchor: policy, optimizer, problems: pool.take(0, 3), config: cfg, lr: 1e-3, rng: new Prng(4) });
    await expect(run).rejects.toThrow(/moreProblems/);
    [policy, optimizer].forEach((x) => x.dispose());
  });
});

describe('RlTrainer with dynamic sampling', () => {
  // The policy's own samples (an untrained model's: all garbage, so flat), except that prompts whose
  // ids sum to a multiple of 3 get one right answer: some groups informative, the rest refilled.
  const patched =
    (t: RlTrainer): Rollouts =>
    async (b) => {
      const samples = await localRollouts(t.policy)(b);
      b.prompts.forEach((ids, j) => {
        if (ids.reduce((a, x) => a + x, 0) % 3 === 0) samples[j * K] = fake(right(byPrompt.get(keyOf(ids))!));
      });
      return samples;
    };
  const cfg = rlConfig({
    stepsPerEpoch: 2,
    promptsPerStep: 2,
    samplesPerPrompt: K,
    maxNewTokens: 12,
    lr: 1e-3,
    ppo: { enabled: true, epochs: 2, minibatch: 4, clipHigh: 0.28, dualClip: 3 },
    anchor: { mode: 'ema', emaLambda: 0.5 },
    kl: { placement: 'loss', estimator: 'k3' },
    betaKl: 0.05,
    advantage: 'grpo',
    microBatch: 4,
    sampleBatch: 8,
    dynamicSampling: { enabled: true, maxTries: 2 },
  });
  const fresh = () => {
    const policy = new Transformer(tinyConfig({ contextLength: 48 }), new Prng(1));
    const t = RlTrainer.create(policy, policy.clone(), cfg, source, 11);
    t.rollouts = patched(t);
    return t;
  };

  it('moves the cursor past every prompt sampled, and resumes mid-epoch to the same bits', async () => {
    const a = fresh();
    const first = await a.runEpoch();
    const second = await a.runEpoch();
    const last = second.steps.at(-1)!;
    const steps = [...first.steps, ...second.steps];
    expect(steps.some((m) => m.promptsSampled > 2 && m.samplingRounds > 1)).toBe(true); // some step refilled
    expect(steps.some((m) => m.updateSamples > 0)).toBe(true);
    steps.forEach((m) => expect(m.updateSamples === 0 || Number.isFinite(m.klLoss)).toBe(true));
    expect(a.cursor.prompt).toBe(steps.reduce((n, m) => n + m.promptsSampled, 0));
    const want = a.state();
    a.dispose();

    const c = await resumeMidEpoch(fresh, (state) => {
      const t = RlTrainer.fromState(state, cfg, source);
      t.rollouts = patched(t);
      return t;
    });
    expect(c.cursor.stepInEpoch).toBe(1);
    const rest = await c.runEpoch();
    expect(untimed(rest.steps[0])).toEqual(untimed(last));
    expectSameState(c.state(), want);
    c.dispose();
  });
});
