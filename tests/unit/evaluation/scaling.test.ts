import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeAll } from '../../../evaluation/decode';
import { evaluate, sampleResponses, sampleStream, scoreResponses } from '../../../evaluation/evaluate';
import { accuracyBySteps } from '../../../evaluation/metrics';
import { inferenceScaling, reasoningLength, responsesAtBudget, type ScalingOptions } from '../../../evaluation/scaling';
import { ANS, encodePrompt } from '../../../model/tokenizer';
import type { Transformer } from '../../../model/transformer';
import { expectNoLeak, useBackend } from '../model/helpers';
import { countdownProblems, endingModel, GARBAGE } from './helpers';

useBackend();

describe('inference scaling', () => {
  let model: Transformer;
  beforeAll(() => void (model = endingModel()));
  afterAll(() => model.dispose());
  const problems = countdownProblems(6);
  const opts: ScalingOptions = {
    samples: 4,
    temperature: 1,
    maxNewTokens: 40,
    batchSize: 12,
    seed: 5,
    garbage: GARBAGE,
    budgets: [3, 8, 40],
    answerTokens: 12,
  };

  it('a budget at or above the natural length equals the untruncated evaluation', async () => {
    const report = await inferenceScaling(model, problems, opts);
    const untruncated = await evaluate(model, problems, opts);
    expect(report.points.map((p) => [p.budget, p.untruncated])).toEqual([
      [3, false],
      [8, false],
      [40, false],
      [40, true],
    ]);
    // budget 40 = maxNewTokens: every reasoning fits
    for (const p of report.points.slice(2)) {
      expect(p.forced).toBe(0);
      expect(p.problems).toEqual(untruncated.problems);
      expect(p.metrics).toEqual(untruncated.metrics);
    }
    // per sample: wherever the reasoning fits the budget, the record is the untruncated one
    const responses = await sampleResponses(model, problems, opts);
    for (const point of report.points.slice(0, 2)) {
      let kept = 0;
      responses.forEach((rs, i) =>
        rs.forEach((r, j) => {
          if (reasoningLength(r) > point.budget) return;
          kept++;
          expect(point.problems[i].samples[j]).toEqual(untruncated.problems[i].samples[j]);
        }),
      );
      expect(kept).toBeGreaterThan(0);
      expect(point.forced).toBeCloseTo(1 - kept / (problems.length * opts.samples), 12);
    }
    expect(report.steps).toEqual(accuracyBySteps(untruncated.problems));
  });

  it('a small budget cuts: reasoning of at most b tokens, then the answer cue', async () => {
    const responses = await sampleResponses(model, problems, opts);
    const b = 3;
    const { responses: cut, forced } = await responsesAtBudget(model, problems, responses, b, opts);
    expect(forced).toBeGreaterThan(6);
    let seen = 0;
    responses.forEach((rs, i) =>
      rs.forEach((r, j) => {
        const c = cut[i][j];
        expect(reasoningLength(c)).toBeLessThanOrEqual(b);
        if (reasoningLength(r) <= b) return expect(c).toEqual(r);
        seen++;
        expect(c.slice(0, b)).toEqual(r.slice(0, b));
        expect(c[b]).toBe(ANS);
        expect(c.length).toBeLessThanOrEqual(b + 1 + opts.answerTokens!);
      }),
    );
    expect(seen).toBe(forced);
    // scored records see the cut responses
    expect(scoreResponses(problems, cut, GARBAGE)[0].samples.map((s) => s.length)).toEqual(cut[0].map((r) => r.length));
  });

  it('equals generating with maxNewTokens = b, then ANS, then the answer, on one stream per sample', async () => {
    const responses = await sampleResponses(model, problems, opts);
    const b = 8;
    const { responses: cut } = await responsesAtBudget(model, problems, responses, b, opts);
    const rows = problems.flatMap((p, i) =>
      responses[i].flatMap((r, j) =>
        reasoningLength(r) > b ? [{ i, j, prompt: encodePrompt(p.prompt), rng: sampleStream(opts.seed, p.id, j) }] : [],
      ),
    );
    expect(rows.length).toBeGreaterThan(3);
    const rngs = rows.map((r) => r.rng);
    const reasoning = await decodeAll(
      model,
      rows.map((r) => r.prompt),
      rngs,
      { ...opts, maxNewTokens: b },
    );
    const answers = await decodeAll(
      model,
      rows.map((r, k) => [...r.prompt, ...reasoning[k], ANS]),
      rngs,
      { ...opts, maxNewTokens: opts.answerTokens! },
    );
    rows.forEach((r, k) => expect(cut[r.i][r.j]).toEqual([...reasoning[k], ANS, ...answers[k]]));
  });

  it('is deterministic by seed, leaks no tensors, and rejects unordered budgets', async () => {
    const small = { ...opts, budgets: [4] };
    const a = await expectNoLeak(() => inferenceScaling(model, problems.slice(0, 2), small));
    expect(await inferenceScaling(model, problems.slice(0, 2), small)).toEqual(a);
    await expect(inferenceScaling(model, problems, { ...opts, budgets: [8, 8] })).rejects.toThrow(/strictly increasing/);
    await expect(inferenceScaling(model, problems, { ...opts, budgets: [0] })).rejects.toThrow(/positive/);
  });
});
