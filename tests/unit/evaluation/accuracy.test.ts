import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { greedyAccuracy } from '../../../evaluation/accuracy';
import { evaluate } from '../../../evaluation/evaluate';
import { chooseSetting, sweepRows, temperatureSweep } from '../../../evaluation/sweep';
import type { Metrics } from '../../../evaluation/metrics';
import type { Transformer } from '../../../model/transformer';
import { useBackend } from '../model/helpers';
import { countdownProblems, endingModel, GARBAGE } from './helpers';

useBackend();

describe('temperatureSweep', () => {
  let model: Transformer;
  beforeAll(() => void (model = endingModel()));
  afterAll(() => model.dispose());
  const problems = countdownProblems(6);
  const decode = { maxNewTokens: 40, batchSize: 8, seed: 3, garbage: GARBAGE };

  it('greedy first, then each temperature on the same streams as evaluate, with per-problem correct counts and progress over all rows', async () => {
    const seen: [number, number][] = [];
    const opts = { ...decode, temperatures: [0.5, 1.3], samples: 4 };
    const r = await temperatureSweep(model, problems, { ...opts, onProgress: (d, t) => void seen.push([d, t]) });
    expect(r.map((s) => s.temperature)).toEqual([null, 0.5, 1.3]);
    const greedy = await evaluate(model, problems, { ...decode, samples: 1, greedy: true, ks: [1] });
    expect(r[0].metrics).toEqual(greedy.metrics);
    expect((await greedyAccuracy(model, problems, decode)).passAt1).toBe(greedy.metrics.passAt1);
    const hot = await evaluate(model, problems, { ...decode, samples: 4, temperature: 1.3 });
    expect(r[2].metrics).toEqual(hot.metrics);
    expect(r[2].correct).toEqual(hot.problems.map((p) => p.samples.filter((s) => s.correct).length));
    expect(r[2].metrics.passAtK).toHaveProperty('4');
    // sampling at T = 1.3 and greedy decoding write different responses
    expect(r[2].metrics.meanLength).not.toBeCloseTo(r[0].metrics.meanLength, 6);
    const total = sweepRows(problems.length, opts);
    expect(total).toBe(6 * (1 + 2 * 4));
    expect(seen.at(-1)).toEqual([total, total]);
    expect(seen.every(([d], i) => i === 0 || d > seen[i - 1][0])).toBe(true);
    expect(await temperatureSweep(model, problems, opts)).toEqual(r);
  });
});

describe('chooseSetting', () => {
  const at = (temperature: number | null, passAt1: number) => ({ temperature, metrics: { passAt1 } as Metrics });
  it('takes the highest pass@1; a tie goes to the earlier setting (greedy, then the configured order)', () => {
    expect(chooseSetting([at(null, 0.2), at(0.3, 0.25), at(1, 0.1)])).toBe(0.3);
    expect(chooseSetting([at(null, 0.25), at(0.3, 0.25), at(1, 0.1)])).toBeNull();
    expect(chooseSetting([at(1, 0.4), at(0.3, 0.4)])).toBe(1);
    expect(() => chooseSetting([])).toThrow(/no settings/);
  });
});
