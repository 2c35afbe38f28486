/**
 * Greedy held-out accuracy, judged exactly as RL rewards are: what SFT validation and the time-boxed
 * bench runs read (on the validation split). Campaign evaluation sweeps temperatures (sweep.ts).
 */
import type { Policy } from '../model/policy';
import type { RlConfig } from '../rl/config';
import type { Problem } from '../tasks/types';
import { evaluate } from './evaluate';
import type { Progress } from './decode';
import type { Metrics } from './metrics';

/** How held-out problems are decoded: one definition for SFT validation, evaluation and bench. */
export interface DecodeSettings {
  maxNewTokens: number;
  batchSize: number;
  /** Sampling seed: sample j of a problem always draws from the same stream. */
  seed: number;
  garbage: RlConfig['garbage'];
}

/** Greedy decoding, one response per problem. */
export async function greedyAccuracy(
  model: Policy,
  problems: readonly Problem[],
  opts: DecodeSettings & { onProgress?: Progress },
): Promise<Metrics> {
  if (!problems.length) throw new Error('greedyAccuracy: no problems');
  const greedy = await evaluate(model, problems, {
    maxNewTokens: opts.maxNewTokens,
    batchSize: opts.batchSize,
    seed: opts.seed,
    garbage: opts.garbage,
    ks: [1],
    samples: 1,
    greedy: true,
    onProgress: opts.onProgress && ((_, d, t) => opts.onProgress!('greedy', d, t)),
  });
  return greedy.metrics;
}
