/**
 * The campaign's held-out evaluation activity: a checkpoint (or the pretrained base, zero-shot)
 * swept over greedy and the configured temperatures on validation and on test, read at the setting
 * validation chose. The per-problem records go to S3 under a key fixed by the model's content hash
 * and the evaluation settings (a retry or a second campaign evaluates nothing twice), and the
 * workflow carries only the summary and that key. Given the summary of an earlier checkpoint
 * (`versus`), it also measures the paired difference on the same test problems.
 */
import type { CampaignConfig } from '../config/campaign';
import { SAMPLE_STREAMS } from '../evaluation/evaluate';
import { passAtK } from '../evaluation/metrics';
import { pairedBootstrap, standardError } from '../evaluation/stats';
import { chooseSetting, sweepRows, temperatureSweep, type SettingResult } from '../evaluation/sweep';
import type { Policy } from '../model/policy';
import { heldOutSpec, sweepSettings } from '../rules/campaign';
import { sweepCacheKey } from '../rules/checkpoints';
import { EVAL_CACHE_PREFIX } from '../storage/checkpoints';
import type { CheckpointRef } from '../storage/manifest';
import { heldOut } from '../tasks/dataset';
import type { JsonlDataset } from '../tasks/jsonl';
import { ConfigError } from '../util/errors';
import { hashOf } from '../util/hash';
import type { Comparison, EvalSummary, EvaluateInput, PairedDifference, SettingSummary } from '../contracts/campaign';
import { heartbeat, type StageContext } from './context';

/** What the S3 object holds: the summary and, per test setting, each problem's correct samples. */
interface StoredEvaluation {
  summary: Omit<EvalSummary, 'label' | 'checkpoint' | 'versus' | 'records' | 'cached'>;
  problems: string[];
  settings: { temperature: number | null; samples: number; correct: number[] }[];
}

/** Bootstrap resamples of the paired comparison, and its seed: fixed, so a comparison is a function of the records. */
const RESAMPLES = 10_000;
const COMPARISON_SEED = 31;

export function evaluationActivities(ctx: StageContext) {
  const { store, backend, policies } = ctx;
  async function sweepOf(
    model: Policy,
    config: CampaignConfig,
    file: JsonlDataset | undefined,
    split: 'val' | 'test',
    done: { rows: number },
    total: number,
  ) {
    const s = sweepSettings(config, split);
    const problems = heldOut({ ...heldOutSpec(config), file }, split, s.problems);
    const base = done.rows;
    const settings = await temperatureSweep(model, problems, {
      ...s,
      onProgress: (d) => heartbeat({ step: base + d, total }),
    });
    done.rows += sweepRows(problems.length, s);
    return { problems, settings };
  }

  async function measure(config: CampaignConfig, checkpoint: CheckpointRef | null): Promise<StoredEvaluation> {
    const file = await ctx.loadTask(config);
    // A fresh LoRA policy computes the base's function exactly (its B matrices are zero).
    const model = checkpoint ? await policies.fromState(config, await ctx.stateOf(checkpoint)) : await policies.fresh(config, config.seed);
    try {
      const total = sweepRows(config.eval.validation.problems, config.eval) + sweepRows(config.eval.problems, config.eval);
      const done = { rows: 0 };
      const val = await sweepOf(model, config, file, 'val', done, total);
      const test = await sweepOf(model, config, file, 'test', done, total);
      return {
        summary: summarise(config, val.settings, test.settings),
        problems: test.problems.map((p) => p.id),
        settings: test.settings.map(stored),
      };
    } finally {
      model.dispose();
    }
  }

  return {
    /** Held-out accuracy of a checkpoint, or (checkpoint null) of the config's pretrained base as it is, zero-shot. */
    async evaluate(input: EvaluateInput): Promise<EvalSummary> {
      const { config, checkpoint } = input;
      const model = checkpoint?.sha256 ?? config.model.base?.sha256;
      if (!model) throw new ConfigError('evaluate: no checkpoint and no model.base to evaluate');
      const key = `${EVAL_CACHE_PREFIX}/${sweepCacheKey(hashOf, config, { model, backend, streams: SAMPLE_STREAMS })}`;
      const hit = await store.getJson<StoredEvaluation>(key);
      const stored = hit ?? (await measure(config, checkpoint));
      if (!hit) await store.putJsonOnce(key, stored);
      const summary: EvalSummary = { label: input.label, checkpoint, ...stored.summary, records: key, cached: !!hit };
      const versus = input.versus?.records && (await store.getJson<StoredEvaluation>(input.versus.records));
      if (input.versus && versus) summary.versus = compare(input.versus, versus, summary, stored);
      return summary;
    },
  };
}

function stored(s: SettingResult): StoredEvaluation['settings'][number] {
  return { temperature: s.temperature, samples: s.metrics.samples, correct: s.correct };
}

function settingSummary(s: SettingResult): SettingSummary {
  const n = s.metrics.samples;
  return {
    temperature: s.temperature,
    passAt1: s.metrics.passAt1,
    stderr: standardError(s.correct.map((c) => c / n)),
    passAtK: s.metrics.passAtK,
    majAtK: s.metrics.majAtK,
    garbageRate: s.metrics.garbageRate,
    meanLength: s.metrics.meanLength,
  };
}

/** The largest k both splits measure at every temperature: the pass@k that the capability comparison reads. */
function topK(config: CampaignConfig): number {
  return Math.min(config.eval.samples, config.eval.validation.samples);
}

function summarise(config: CampaignConfig, val: SettingResult[], test: SettingResult[]): StoredEvaluation['summary'] {
  const chosen = chooseSetting(val);
  const at = test.find((s) => s.temperature === chosen)!;
  const k = topK(config);
  // pass@k is a capability reading: the temperature with the highest pass@k on validation (greedy has one sample).
  const sampled = val.filter((s) => s.temperature !== null);
  const kTemperature = chooseSetting(sampled.map((s) => ({ ...s, metrics: { ...s.metrics, passAt1: kOf(s, k) } })));
  const greedy = test[0];
  return {
    accuracy: at.metrics.passAt1,
    stderr: settingSummary(at).stderr,
    temperature: chosen,
    greedyAccuracy: greedy.metrics.passAt1,
    n: at.metrics.problems,
    samples: at.metrics.samples,
    garbageRate: at.metrics.garbageRate,
    meanLength: at.metrics.meanLength,
    sweep: {
      test: test.map(settingSummary),
      validation: val.map((s) => ({ temperature: s.temperature, passAt1: s.metrics.passAt1, passAtK: kOf(s, k) })),
      samples: config.eval.samples,
      validationProblems: val[0].metrics.problems,
      validationSamples: config.eval.validation.samples,
      k,
      kTemperature,
    },
  };
}

/** Mean over problems of unbiased pass@k from a setting's correct counts. */
function kOf(s: Pick<SettingResult, 'correct' | 'metrics'>, k: number): number {
  const n = s.metrics.samples;
  return s.correct.reduce((a, c) => a + passAtK(n, c, Math.min(k, n)), 0) / s.correct.length;
}

/**
 * This evaluation minus `before`'s, paired by problem on the same test set: pass@1 each at its
 * chosen setting, and pass@k each at its chosen temperature, with percentile bootstrap CIs over problems.
 */
function compare(before: EvalSummary, old: StoredEvaluation, after: EvalSummary, now: StoredEvaluation): Comparison | undefined {
  if (old.problems.join('\n') !== now.problems.join('\n') || !before.sweep || !after.sweep) return undefined;
  const rates = (e: StoredEvaluation, t: number | null) => {
    const s = e.settings.find((x) => x.temperature === t)!;
    return s.correct.map((c) => c / s.samples);
  };
  const ks = (e: StoredEvaluation, t: number | null, k: number) => {
    const s = e.settings.find((x) => x.temperature === t)!;
    return s.correct.map((c) => passAtK(s.samples, c, Math.min(k, s.samples)));
  };
  const k = Math.min(before.sweep.k, after.sweep.k);
  const paired = (a: number[], b: number[], settings: PairedDifference['settings']): PairedDifference => {
    const r = pairedBootstrap(a, b, { resamples: RESAMPLES, seed: COMPARISON_SEED });
    return { diff: r.meanDiff, lo: r.bootstrap.lo, hi: r.bootstrap.hi, level: r.bootstrap.level, settings };
  };
  return {
    against: before.label,
    problems: now.problems.length,
    passAt1: paired(rates(old, before.temperature), rates(now, after.temperature), [before.temperature, after.temperature]),
    passAtK: {
      k,
      ...paired(ks(old, before.sweep.kTemperature, k), ks(now, after.sweep.kTemperature, k), [
        before.sweep.kTemperature,
        after.sweep.kTemperature,
      ]),
    },
  };
}
