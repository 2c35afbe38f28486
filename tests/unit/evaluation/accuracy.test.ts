import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { heldOutAccuracy, standardError } from '../../../evaluation/accuracy';
import { evaluate } from '../../../evaluation/evaluate';
import type { Transformer } from '../../../model/transformer';
import { useWasm } from '../model/helpers';
import { countdownProblems, endingModel, GARBAGE } from './helpers';

useWasm();

describe('standardError', () => {
  it('is the sample standard deviation over sqrt(n)', () => {
    // mean 0.5, sum of squares 1, variance 1/3, se = sqrt(1/12)
    expect(standardError([0, 0, 1, 1])).toBeCloseTo(Math.sqrt(1 / 12), 12);
    expect(standardError([0.25, 0.25, 0.25])).toBe(0);
    expect(standardError([1])).toBe(0);
  });
});

describe('heldOutAccuracy', () => {
  let model: Transformer;
  beforeAll(() => void (model = endingModel()));
  afterAll(() => model.dispose());
  const problems = countdownProblems(6);
  const opts = { samples: 4, temperature: 1.3, maxNewTokens: 40, batchSize: 8, seed: 3, garbage: GARBAGE };

  it('pass@1 over n samples at the evaluation temperature, greedy beside it, on the same streams as evaluate', async () => {
    const phases = new Set<string>();
    const r = await heldOutAccuracy(model, problems, { ...opts, onProgress: (phase) => void phases.add(phase) });
    const sampled = await evaluate(model, problems, opts);
    const greedy = await evaluate(model, problems, { ...opts, samples: 1, greedy: true });
    expect(r).toMatchObject({
      n: 6,
      samples: 4,
      temperature: 1.3,
      accuracy: sampled.metrics.passAt1,
      greedyAccuracy: greedy.metrics.passAt1,
    });
    expect(r.meanLength).toBeCloseTo(sampled.metrics.meanLength, 12);
    expect(r.greedyMeanLength).toBeCloseTo(greedy.metrics.meanLength, 12);
    // sampling at T = 1.3 and greedy decoding write different responses
    expect(r.meanLength).not.toBeCloseTo(r.greedyMeanLength, 6);
    const perProblem = sampled.problems.map((p) => p.samples.filter((s) => s.correct).length / 4);
    expect(r.stderr).toBe(standardError(perProblem));
    expect([...phases]).toEqual(['sampling', 'greedy']);
    expect(await heldOutAccuracy(model, problems, opts)).toEqual(r);
  });
});
