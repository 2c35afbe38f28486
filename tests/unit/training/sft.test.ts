import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { decodeAll } from '../../../evaluation/decode';
import type { Policy } from '../../../model/policy';
import { SftTrainer } from '../../../training/sft';
import { Prng } from '../../../util/prng';
import { expectNoLeak, useBackend } from '../model/helpers';
import { reverseExamples, reverseTask, smallConfig } from './toy';

useBackend();

/** Greedy exact match over the items, decoded as evaluation decodes (evaluation/decode.ts). */
async function greedyAccuracy(
  model: Policy,
  items: { prompt: string; verify: (answer: string | null) => boolean }[],
  maxNewTokens: number,
) {
  const prompts = items.map((it) => model.format.encodePrompt(it.prompt));
  const rows = await decodeAll(
    model,
    prompts,
    prompts.map(() => new Prng(0)),
    { maxNewTokens, greedy: true, batchSize: 32 },
  );
  return rows.filter((tokens, i) => items[i].verify(model.format.parseResponse(tokens).answer)).length / items.length;
}

describe('SftTrainer', () => {
  const train = reverseExamples(64, 1);

  it('gradient accumulation over micro-batches equals one big batch', () => {
    const sft = (micro: number) => ({
      batchSize: 8,
      microBatchSize: micro,
      lr: 1e-2,
      minLr: 1e-4,
      warmupSteps: 0,
      steps: 10,
      weightDecay: 0.1,
    });
    const whole = SftTrainer.create(smallConfig(), sft(8), train, 3);
    const split = SftTrainer.create(smallConfig(), sft(2), train, 3);
    const batch = whole.nextBatch();
    const a = whole.trainStep(batch);
    const b = split.trainStep(batch);
    expect(b.loss).toBeCloseTo(a.loss, 5);
    expect(b.gradNorm).toBeCloseTo(a.gradNorm, 5);
    expect(b.tokens).toBe(a.tokens);
    // Micro-batches are cut from the batch sorted by length, each padded to its own longest sequence.
    const sorted = batch.map((e) => e.tokens.length - 1).sort((x, y) => x - y);
    expect(b.positions).toBe([0, 2, 4, 6].reduce((n, i) => n + 2 * sorted[i + 1], 0));
    const wa = whole.model.getWeights();
    const wb = split.model.getWeights();
    let maxDiff = 0;
    for (const k of whole.model.names) wa[k].forEach((x, i) => (maxDiff = Math.max(maxDiff, Math.abs(x - wb[k][i]))));
    expect(maxDiff).toBeLessThan(1e-5); // lr 1e-2: a real step, equal up to float summation order
    whole.dispose();
    split.dispose();
  });

  it('counts response tokens only and leaves no tensors behind', async () => {
    const baseline = tf.memory().numTensors;
    const t = SftTrainer.create(smallConfig(), { batchSize: 4, microBatchSize: 2 }, train, 1);
    const batch = train.slice(0, 4);
    t.trainStep(batch); // optimizer moments are created on the first step
    const r = await expectNoLeak(() => t.trainStep(batch));
    expect(r.tokens).toBe(batch.reduce((n, e) => n + e.lossMask.reduce((a, b) => a + b, 0), 0));
    expect(r.positions).toBe(2 * 2 * (batch[0].tokens.length - 1));
    await expectNoLeak(() => t.validationLoss(train.slice(0, 5)));
    await expectNoLeak(() => greedyAccuracy(t.model, [{ prompt: 'rev 1234', verify: (a) => a === '4321' }], 8));
    t.dispose();
    expect(tf.memory().numTensors).toBe(baseline);
  });

  it('learns a toy task: validation loss falls and greedy exact-match rises above zero', async () => {
    const tasks = reverseTask(32, 99);
    const evalItems = tasks.map((t) => ({ prompt: t.prompt, verify: (answer: string | null) => answer === t.answer + t.verification }));
    const valExamples = reverseExamples(32, 99);
    const t = SftTrainer.create(
      smallConfig({ dModel: 64, nHeads: 4, dFF: 256 }),
      {
        batchSize: 32,
        microBatchSize: 32,
        lr: 3e-3,
        minLr: 3e-4,
        warmupSteps: 20,
        steps: 400,
        weightDecay: 0.01,
      },
      reverseExamples(2000, 2),
      5,
    );
    const start = t.validationLoss(valExamples);
    const curve: string[] = [];
    const evals: { step: number; valLoss: number; accuracy: number }[] = [];
    const t0 = performance.now();
    // The production loop's shape (activities/sft.ts): trainStep, and validation loss and greedy accuracy every 50 steps.
    while (t.step < 150) {
      t.trainStep();
      if (t.step % 50 !== 0) continue;
      const e = { step: t.step, valLoss: t.validationLoss(valExamples), accuracy: await greedyAccuracy(t.model, evalItems, 12) };
      evals.push(e);
      curve.push(
        `step ${e.step}: val loss ${e.valLoss.toFixed(3)}, exact match ${(100 * e.accuracy).toFixed(0)}% (${((performance.now() - t0) / 1000).toFixed(1)} s)`,
      );
    }
    console.log(`SFT smoke (reverse 4 digits), start val loss ${start.toFixed(3)}\n  ${curve.join('\n  ')}`);
    expect(evals.at(-1)!.valLoss).toBeLessThan(0.5 * start);
    expect(evals.at(-1)!.accuracy).toBeGreaterThan(0);
    expect(performance.now() - t0).toBeLessThan(60_000);
    expect(tf.memory().numTensors).toBeLessThan(1000);
    t.dispose();
  });
});
