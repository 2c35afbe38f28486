import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { evalJson, parseEvalArgs, renderEval } from '../../../cli/commands/eval';
import { inferenceScaling } from '../../../evaluation/scaling';
import type { Transformer } from '../../../model/transformer';
import { useBackend } from '../model/helpers';
import { countdownProblems, endingModel, GARBAGE } from './helpers';

useBackend();

const ID = ['c-1/rl-e4'];

describe('t1 eval flags', () => {
  it('defaults', () => {
    expect(parseEvalArgs({ task: 'countdown' }, ID)).toEqual({
      checkpoint: 'c-1/rl-e4',
      task: 'countdown',
      difficulty: { min: 3, max: 3 },
      samples: 4,
      temperature: 1,
      budgets: [32, 64, 128],
      problems: 200,
      seed: 1,
      maxNewTokens: undefined,
      answerTokens: 40,
      batchSize: 64,
      json: false,
    });
    expect(
      parseEvalArgs({ task: 'arithmetic', difficulty: '2-5', samples: '8', temperature: '0.7', budgets: '16, 32', json: true }, ID),
    ).toMatchObject({
      difficulty: { min: 2, max: 5 },
      samples: 8,
      temperature: 0.7,
      budgets: [16, 32],
      json: true,
    });
    // greedy: one sample unless asked otherwise
    expect(parseEvalArgs({ task: 'countdown', temperature: '0' }, ID).samples).toBe(1);
  });

  it.each([
    [{}, /--task: expected one of countdown, arithmetic \(required\)/],
    [{ task: 'chess' }, /--task: .*got "chess"/],
    [{ task: 'countdown', samples: '0' }, /--samples: expected an integer >= 1, got "0"/],
    [{ task: 'countdown', samples: '2.5' }, /--samples/],
    [{ task: 'countdown', budgets: '64,32' }, /--budgets: expected strictly increasing/],
    [{ task: 'countdown', budgets: '32,,64' }, /--budgets/],
    [{ task: 'countdown', difficulty: 'hard' }, /--difficulty: expected N or MIN-MAX/],
    [{ task: 'countdown', difficulty: '5-3' }, /--difficulty: MIN must not exceed MAX/],
    [{ task: 'countdown', difficulty: '2-9' }, /--difficulty: countdown difficulty is 3\.\.6/],
    [{ task: 'countdown', temperature: '-1' }, /--temperature: expected a number >= 0/],
    [{ task: 'countdown', temperature: '0', samples: '4' }, /--samples: greedy decoding/],
    [{ task: 'countdown', problems: 'many' }, /--problems/],
    [{ task: 'countdown', seed: '-3' }, /--seed/],
    [{ task: 'countdown', 'max-new-tokens': '0' }, /--max-new-tokens/],
  ])('%j is rejected naming the flag', (flags, message) => {
    expect(() => parseEvalArgs(flags, ID)).toThrow(message);
  });

  it('reports every bad flag at once, and checks the checkpoint id', () => {
    expect(() => parseEvalArgs({ task: 'countdown', samples: 'x', budgets: 'y' }, ID)).toThrow(/--samples.*\n--budgets/s);
    expect(() => parseEvalArgs({ task: 'countdown' }, [])).toThrow(/exactly one CHECKPOINT_ID/);
    expect(() => parseEvalArgs({ task: 'countdown' }, ['no-slash'])).toThrow(/CHECKPOINT_ID: expected <campaign>\/<name>/);
  });
});

describe('t1 eval output', () => {
  let model: Transformer;
  beforeAll(() => void (model = endingModel()));
  afterAll(() => model.dispose());

  it('--json: per-budget accuracy with the untruncated run last, then pass@k, maj@k and steps', async () => {
    const req = { ...parseEvalArgs({ task: 'countdown', samples: '2', budgets: '4,16' }, ID), maxNewTokens: 40 };
    const report = await inferenceScaling(model, countdownProblems(3), { ...req, maxNewTokens: 40, batchSize: 8, garbage: GARBAGE });
    const j = JSON.parse(JSON.stringify(evalJson(req, report)));
    expect(j).toMatchObject({ checkpoint: 'c-1/rl-e4', task: 'countdown', problems: 3, samples: 2, maxNewTokens: 40 });
    expect(j.budgets.map((b: any) => [b.budget, b.untruncated])).toEqual([
      [4, false],
      [16, false],
      [40, true],
    ]);
    for (const b of j.budgets) expect(b.accuracy).toBeTypeOf('number');
    expect(j.passAt1).toBe(report.points[2].metrics.passAt1);
    expect(Object.keys(j.passAtK)).toEqual(['1', '2']);
    expect(Object.keys(j.majAtK)).toEqual(['1', '2']);
    expect(j.steps).toEqual(report.steps);
    const text = renderEval(j);
    expect(text).toMatch(/^ +4 +\d+\.\d%/m);
    expect(text).toMatch(/^ +40\* +\d+\.\d%/m);
    expect(text).toMatch(/^pass@1 \d+\.\d%  pass@2 /m);
    expect(text).toMatch(/^maj@1 \d+\.\d%  maj@2 /m);
  });
});
