/**
 * Held-out accuracy of a model, as T1 reports it: pass@1 averaged over n samples per problem at
 * the evaluation temperature (the headline), with greedy accuracy beside it (greedy decoding hides
 * what RL does to the sampled distribution). Judged exactly as RL rewards are. One definition,
 * used by SFT validation, campaign evaluation and the benchmarks.
 */
import type { Policy } from '../model/policy';
import type { RlConfig } from '../rl/config';
import type { Problem } from '../tasks/types';
import { evaluate, type EvalOptions } from './evaluate';
import type { Progress } from './decode';

export interface HeldOutOptions {
  /** n: samples per problem for pass@1. */
  samples: number;
  temperature: number;
  maxNewTokens: number;
  batchSize: number;
  /** Sampling seed: sample j of a problem always draws from the same stream. */
  seed: number;
  garbage: RlConfig['garbage'];
  onProgress?: Progress;
}

export interface HeldOutResult {
  /** pass@1: mean over problems of the share of correct samples. */
  accuracy: number;
  /** Standard error of `accuracy` over problems. */
  stderr: number;
  greedyAccuracy: number;
  /** Problems. */
  n: number;
  samples: number;
  temperature: number;
  /** Over the sampled responses. */
  garbageRate: number;
  meanLength: number;
  greedyGarbageRate: number;
  greedyMeanLength: number;
}

const baseOptions = (opts: HeldOutOptions): Omit<EvalOptions, 'samples'> => ({
  maxNewTokens: opts.maxNewTokens,
  batchSize: opts.batchSize,
  seed: opts.seed,
  garbage: opts.garbage,
  ks: [1],
});

/** The greedy half of `heldOutAccuracy` alone: SFT validation reads its accuracy with the same judge. */
export async function greedyAccuracy(model: Policy, problems: readonly Problem[], opts: HeldOutOptions) {
  if (!problems.length) throw new Error('greedyAccuracy: no problems');
  const greedy = await evaluate(model, problems, {
    ...baseOptions(opts),
    samples: 1,
    greedy: true,
    onProgress: opts.onProgress && ((_, d, t) => opts.onProgress!('greedy', d, t)),
  });
  return greedy.metrics;
}

export async function heldOutAccuracy(model: Policy, problems: readonly Problem[], opts: HeldOutOptions): Promise<HeldOutResult> {
  if (!problems.length) throw new Error('heldOutAccuracy: no problems');
  const sampled = await evaluate(model, problems, {
    ...baseOptions(opts),
    samples: opts.samples,
    temperature: opts.temperature,
    onProgress: opts.onProgress,
  });
  const greedy = await greedyAccuracy(model, problems, opts);
  const perProblem = sampled.problems.map((p) => p.samples.filter((s) => s.correct).length / p.samples.length);
  return {
    accuracy: sampled.metrics.passAt1,
    stderr: standardError(perProblem),
    greedyAccuracy: greedy.passAt1,
    n: problems.length,
    samples: opts.samples,
    temperature: opts.temperature,
    garbageRate: sampled.metrics.garbageRate,
    meanLength: sampled.metrics.meanLength,
    greedyGarbageRate: greedy.garbageRate,
    greedyMeanLength: greedy.meanLength,
  };
}

/** Standard error of the mean (sample standard deviation / sqrt(n)); 0 for fewer than two values. */
export function standardError(xs: readonly number[]): number {
  const n = xs.length;
  if (n < 2) return 0;
  const m = xs.reduce((a, b) => a + b, 0) / n;
  const v = xs.reduce((s, x) => s + (x - m) ** 2, 0) / (n - 1);
  return Math.sqrt(v / n);
}
