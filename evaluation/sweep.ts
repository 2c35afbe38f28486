/**
 * Held-out evaluation that separates sharpening from capability: pass@1 greedy and at a sweep of
 * temperatures, pass@k and maj@k from n samples per problem at each temperature. A checkpoint is
 * read at its best setting, chosen on the validation split and reported on test, so a change that
 * only moves the best temperature does not read as a gain. Deterministic by seed: every temperature
 * draws sample j of a problem from the same stream (common random numbers across settings).
 */
import type { Policy } from '../model/policy';
import type { RlConfig } from '../rl/config';
import type { Problem } from '../tasks/types';
import { evaluate } from './evaluate';
import { defaultKs, type Metrics } from './metrics';

export interface SweepOptions {
  /** Sampling temperatures; greedy decoding is always evaluated first. */
  temperatures: readonly number[];
  /** n: samples per problem at each temperature. */
  samples: number;
  maxNewTokens: number;
  batchSize: number;
  seed: number;
  garbage: RlConfig['garbage'];
  /** Rows decoded so far of all settings. */
  onProgress?: (done: number, total: number) => void | Promise<void>;
}

/** One decoding setting's results; temperature null is greedy. */
export interface SettingResult {
  temperature: number | null;
  metrics: Metrics;
  /** Per problem (in order): its samples that the verifier accepted. */
  correct: number[];
}

/** Decoded rows of a sweep: one greedy pass and n per temperature, for each problem. */
export function sweepRows(problems: number, opts: Pick<SweepOptions, 'temperatures' | 'samples'>): number {
  return problems * (1 + opts.temperatures.length * opts.samples);
}

export async function temperatureSweep(model: Policy, problems: readonly Problem[], opts: SweepOptions): Promise<SettingResult[]> {
  const total = sweepRows(problems.length, opts);
  let offset = 0;
  const out: SettingResult[] = [];
  for (const temperature of [null, ...opts.temperatures]) {
    const n = temperature === null ? 1 : opts.samples;
    const r = await evaluate(model, problems, {
      samples: n,
      ...(temperature === null ? { greedy: true } : { temperature }),
      maxNewTokens: opts.maxNewTokens,
      batchSize: opts.batchSize,
      seed: opts.seed,
      garbage: opts.garbage,
      ks: defaultKs(n),
      onProgress: opts.onProgress && ((_, done) => opts.onProgress!(offset + done, total)),
    });
    offset += problems.length * n;
    out.push({ temperature, metrics: r.metrics, correct: r.problems.map((p) => p.samples.filter((s) => s.correct).length) });
  }
  return out;
}

/**
 * The setting a checkpoint is read at: the highest pass@1 (on validation). Ties go to the earlier
 * setting (greedy, then temperatures in the configured order), so the choice is a function of the
 * numbers alone.
 */
export function chooseSetting(settings: readonly Pick<SettingResult, 'temperature' | 'metrics'>[]): number | null {
  if (!settings.length) throw new Error('chooseSetting: no settings');
  let best = 0;
  settings.forEach((s, i) => {
    if (s.metrics.passAt1 > settings[best].metrics.passAt1) best = i;
  });
  return settings[best].temperature;
}
