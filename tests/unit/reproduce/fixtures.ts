/** Stored reproduction runs as the report reads them: small, with values chosen so the expected cells can be worked by hand. */
import type { CampaignResult, EvalSummary, ScalingPoint, SettingSummary } from '../../../contracts/campaign';
import type { ReproduceRun } from '../../../contracts/reproduce';

const TEMPERATURES = [null, 0.3, 0.6, 1] as const;

/** A swept evaluation whose pass@1 is `best` at `chosen` and 5 points lower elsewhere; pass@k = pass@1 + 10·log2(k)/4 points. */
export function sweptEval(label: string, best: number, chosen: number | null = 0.3): EvalSummary {
  const at = (t: number | null) => (t === chosen ? best : best - 0.05);
  const setting = (t: number | null): SettingSummary => {
    const p = at(t);
    const ks = t === null ? [1] : [1, 2, 4, 8, 16];
    return {
      temperature: t,
      passAt1: p,
      stderr: 0.01,
      passAtK: Object.fromEntries(ks.map((k) => [String(k), p + (0.1 * Math.log2(k)) / 4])),
      majAtK: Object.fromEntries(ks.map((k) => [String(k), p + 0.01 * Math.log2(k)])),
      garbageRate: 0.01,
      meanLength: 40,
    };
  };
  return {
    label,
    checkpoint: null,
    accuracy: best,
    stderr: 0.01,
    temperature: chosen,
    greedyAccuracy: at(null),
    n: 500,
    samples: chosen === null ? 1 : 16,
    garbageRate: 0.01,
    meanLength: 40,
    sweep: {
      test: TEMPERATURES.map(setting),
      validation: TEMPERATURES.map((t) => ({ temperature: t, passAt1: at(t), passAtK: at(t) + 0.1 })),
      samples: 16,
      validationProblems: 100,
      validationSamples: 16,
      k: 16,
      kTemperature: 1,
    },
  };
}

export const epoch = (e: number, length: number, tokens = 100_000) => ({
  epoch: e,
  steps: 8,
  reward: 0.3,
  accuracy: 0.3,
  kl: 0.5,
  klPenalty: 0.02,
  rewardSpread: 0.2,
  entropy: 0.1,
  entropyGradRatio: 0.05,
  garbageRate: 0.01,
  responseLength: length,
  zeroVarianceGroups: 0.4,
  sampledTokens: tokens,
});

/**
 * Relative-budget points of one checkpoint: median reasoning 40 tokens, cut at 50 % and 100 % of it
 * (20 and 40 tokens) with pass@1 `half` and `full` on 4 problems x 2 samples, and `untruncated`.
 */
export function scalingPoints(label: string, half: number, full: number, untruncated: number): ScalingPoint[] {
  // 4 problems x 2 samples: a pass rate of r puts 8r correct samples over them.
  const correct = (r: number) => {
    const c = Math.round(8 * r);
    return [0, 1, 2, 3].map((i) => Math.min(2, Math.max(0, c - 2 * i)));
  };
  const p = (budget: number, rate: number, cut: boolean): ScalingPoint => ({
    label,
    checkpoint: { id: `c/${label}`, sha256: 'a'.repeat(64), step: 1 },
    budget,
    untruncated: !cut,
    accuracy: rate,
    forced: cut ? 0.5 : 0,
    meanLength: 40,
    meanSteps: 2,
    ...(cut ? {} : { medianReasoning: 40 }),
    correct: correct(rate),
    samples: 2,
    cached: false,
  });
  return [p(20, half, true), p(40, full, true), p(156, untruncated, false)];
}

/** A run whose SFT and final evaluations are swept, with a paired gain of `gain` (pass@1) and `gainK` (pass@16). */
export function run(
  seed: number,
  arm: string,
  sft: number,
  final: number,
  o: { gain?: number; gainK?: number; scaling?: ScalingPoint[]; tokens?: number; bk?: [number, number] } = {},
): ReproduceRun {
  const s = sweptEval('sft', sft);
  const f = sweptEval('final', final);
  const gain = o.gain ?? final - sft;
  const result = {
    config: {
      rl: { promptsPerStep: o.bk?.[0] ?? 48, samplesPerPrompt: o.bk?.[1] ?? 16, betaKl: 0.1, alphaEnt: 0.5 },
      eval: { seed: 2025, scaling: { samples: 2, problems: 4, temperature: 1, fractions: [0.5, 1] } },
    },
    results: {
      sft: { accuracy: sft, stderr: 0.01, greedyAccuracy: s.greedyAccuracy, temperature: 0.3 },
      final: { accuracy: final, stderr: 0.01, greedyAccuracy: f.greedyAccuracy, temperature: 0.3 },
      gain: {
        against: 'sft',
        problems: 500,
        passAt1: { diff: gain, lo: gain - 0.02, hi: gain + 0.02, level: 0.95, settings: [0.3, 0.3] },
        passAtK: {
          k: 16,
          diff: o.gainK ?? -0.01,
          lo: (o.gainK ?? -0.01) - 0.03,
          hi: (o.gainK ?? -0.01) + 0.03,
          level: 0.95,
          settings: [1, 1],
        },
      },
    },
    evals: [s, f],
    epochs: [epoch(1, 45, o.tokens), epoch(2, 50, o.tokens)],
    scaling: o.scaling ?? [],
  } as unknown as CampaignResult;
  return { seed, arm, campaignId: `r-s${seed}-${arm}`, seconds: 600, finishedAt: `2026-12-0${seed}T00:00:00.000Z`, result };
}
