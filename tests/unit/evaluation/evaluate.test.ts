import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { evaluate, sampleResponses, scoreSample, type EvalOptions } from '../../../evaluation/evaluate';
import { buildExample, encodePrompt } from '../../../model/tokenizer';
import type { Transformer } from '../../../model/transformer';
import { writeTrace } from '../../../tasks/teacher';
import { Prng } from '../../../util/prng';
import { useBackend } from '../model/helpers';
import { countdownProblems, endingModel, GARBAGE } from './helpers';

useBackend();

describe('evaluate', () => {
  let model: Transformer;
  beforeAll(() => void (model = endingModel()));
  afterAll(() => model.dispose());
  const problems = countdownProblems(5);
  const opts: EvalOptions = { samples: 3, temperature: 1, maxNewTokens: 40, batchSize: 8, seed: 11, garbage: GARBAGE };

  it('is deterministic by seed, and the seed matters', async () => {
    const a = await evaluate(model, problems, opts);
    expect(await evaluate(model, problems, opts)).toEqual(a);
    expect((await evaluate(model, problems, { ...opts, seed: 12 })).problems).not.toEqual(a.problems);
    expect(a.metrics.problems).toBe(5);
    expect(a.metrics.samples).toBe(3);
    expect(Object.keys(a.metrics.passAtK)).toEqual(['1', '2', '3']);
    expect(a.problems.map((p) => p.id)).toEqual(problems.map((p) => p.id));
  });

  it("a sample's tokens do not depend on batch size or problem order", async () => {
    const batched = await sampleResponses(model, problems, opts);
    const single = await sampleResponses(model, [...problems].reverse(), { ...opts, batchSize: 1 });
    expect(single.reverse()).toEqual(batched);
    // and the samples of one problem differ from each other
    expect(new Set(batched.flat().map((r) => r.join(','))).size).toBeGreaterThan(10);
  });

  it('greedy mode: one sample per problem, no randomness', async () => {
    const g = { ...opts, greedy: true, samples: 1 };
    const a = await evaluate(model, problems, g);
    expect(await evaluate(model, problems, { ...g, seed: 99 })).toEqual(a);
    await expect(evaluate(model, problems, { ...g, samples: 2 })).rejects.toThrow(/greedy/);
  });

  it('scores with the RL reward rules: a teacher trace is correct, its steps counted', () => {
    const p = problems[0];
    const trace = writeTrace(p, new Prng(3))!;
    const response = buildExample({ prompt: p.prompt, ...trace }).tokens.slice(encodePrompt(p.prompt).length);
    expect(scoreSample(p, response, GARBAGE)).toEqual({
      correct: true,
      garbage: null,
      answer: trace.answer,
      length: response.length,
      steps: trace.steps,
    });
    // Cut inside the answer line: truncated garbage, and the partial answer does not vote.
    const cut = response.slice(0, response.length - trace.verification.length - 2);
    expect(scoreSample(p, cut, GARBAGE)).toMatchObject({ correct: false, garbage: 'truncated', answer: null });
  });
});
