import { describe, expect, it } from 'vitest';
import { comparisonText, SWEEP_HEADER, sweepSize, sweepTableRows } from '../../../report/evaluation';
import type { EvalSummary, SettingSummary } from '../../../contracts/campaign';

const setting = (temperature: number | null, passAt1: number): SettingSummary => ({
  temperature,
  passAt1,
  stderr: 0.01,
  passAtK: temperature === null ? { 1: passAt1 } : { 1: passAt1, 16: passAt1 + 0.2 },
  majAtK: temperature === null ? { 1: passAt1 } : { 1: passAt1, 16: passAt1 + 0.1 },
  garbageRate: 0.05,
  meanLength: 40,
});

const evaluation: EvalSummary = {
  label: 'sft',
  checkpoint: { id: 'c/sft', sha256: 'a'.repeat(64), step: 1 },
  accuracy: 0.2,
  stderr: 0.01,
  temperature: 0.6,
  greedyAccuracy: 0.18,
  n: 500,
  samples: 16,
  garbageRate: 0.05,
  meanLength: 40,
  sweep: {
    test: [setting(null, 0.18), setting(0.6, 0.2), setting(1, 0.15)],
    validation: [
      { temperature: null, passAt1: 0.19, passAtK: 0.19 },
      { temperature: 0.6, passAt1: 0.21, passAtK: 0.4 },
      { temperature: 1, passAt1: 0.14, passAtK: 0.45 },
    ],
    samples: 16,
    validationProblems: 100,
    validationSamples: 16,
    k: 16,
    kTemperature: 1,
  },
};

describe('evaluation tables', () => {
  it('one row per setting, validation beside test, the chosen setting starred, pass@k and maj@k at the largest k', () => {
    const rows = sweepTableRows([evaluation]);
    expect(rows.every((r) => r.length === SWEEP_HEADER.length)).toBe(true);
    expect(rows.map((r) => r.slice(0, 4))).toEqual([
      ['sft', 'greedy', '19.0%', '18.0%'],
      ['', 'T=0.6*', '21.0%', '20.0%'],
      ['', 'T=1', '14.0%', '15.0%'],
    ]);
    expect(rows[1].slice(5, 7)).toEqual(['@16 40.0%', '@16 30.0%']);
    expect(rows[0].slice(5, 7)).toEqual(['@1 18.0%', '@1 18.0%']);
    expect(sweepSize(evaluation)).toBe('500 test problems × 16 samples per temperature; settings chosen on 100 validation problems × 16');
  });

  it('the headline names both settings, the size and the interval; an interval without bounds says so', () => {
    const text = comparisonText('final', {
      against: 'sft',
      problems: 500,
      passAt1: { diff: 0.031, lo: 0.012, hi: 0.05, level: 0.95, settings: [0.6, null] },
      passAtK: { k: 16, diff: -0.01, lo: null, hi: null, level: 0.95, settings: [1, 0.6] },
    });
    expect(text).toBe(
      'final − sft, each at the setting chosen on validation, paired over 500 test problems (percentile bootstrap): ' +
        'pass@1 +3.1 points (95% CI +1.2 to +5.0) [sft T=0.6, final greedy]; pass@16 −1.0 points (no CI) [sft T=1, final T=0.6]',
    );
  });
});
