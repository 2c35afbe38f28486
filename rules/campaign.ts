/**
 * The campaign's decisions, in one pure module (no tfjs, no Temporal, no Node built-ins) that the
 * workflow, the activities, bench and tests all import: when the anchor moves, which checkpoints the
 * inference-scaling sweep evaluates, which problems a stage reads, and the settings each layer
 * derives from the campaign config. Change a rule here and every caller follows.
 */
import { teacherMaxChars, type CampaignConfig } from '../config/campaign';
import type { DecodeSettings } from '../evaluation/accuracy';
import type { SweepOptions } from '../evaluation/sweep';
import type { PromptSource } from '../rl/prompts';
import type { DatasetSpec } from '../tasks/dataset';

/**
 * Whether the anchor := policy refresh follows RL epoch `epochsDone` (1-based): every E epochs in
 * refresh mode, never after the last epoch (nothing would use it).
 */
export function anchorRefreshDue(rl: Pick<CampaignConfig['rl'], 'anchor' | 'epochs'>, epochsDone: number): boolean {
  const { mode, refreshEveryEpochs } = rl.anchor;
  return mode === 'refresh' && epochsDone > 0 && epochsDone % refreshEveryEpochs === 0 && epochsDone < rl.epochs;
}

/** T1's inference-scaling figure: SFT and RL at about 30%, 60% and 100% of training. */
export const SCALING_FRACTIONS = [0.3, 0.6, 1] as const;

/** The RL epochs (1-based) the scaling sweep evaluates after `epochs` epochs, distinct and ascending. */
export function scalingEpochs(epochs: number): number[] {
  if (epochs < 1) return [];
  return [...new Set(SCALING_FRACTIONS.map((f) => Math.max(1, Math.round(f * epochs))))];
}

export interface ScalingPoint<C> {
  label: string;
  checkpoint: C;
  /** Reasoning budget in tokens; null: untruncated. */
  budget: number | null;
}

/** The checkpoints the sweep evaluates: SFT, then the picked RL epochs. */
export function scalingCheckpoints<C>(sft: C, rlEpochs: readonly C[]): { label: string; checkpoint: C }[] {
  const n = rlEpochs.length;
  return [
    { label: 'sft', checkpoint: sft },
    ...scalingEpochs(n).map((e) => ({ label: `rl ${Math.round((100 * e) / n)}%`, checkpoint: rlEpochs[e - 1] })),
  ];
}

/** Every (checkpoint, budget) point of a sweep at fixed budgets: each checkpoint at every budget and untruncated. */
export function scalingSweep<C>(budgets: readonly number[], checkpoints: readonly { label: string; checkpoint: C }[]): ScalingPoint<C>[] {
  return checkpoints.flatMap((c) => [...budgets, null].map((budget) => ({ ...c, budget })));
}

/**
 * Reasoning budgets as fractions of a checkpoint's median untruncated reasoning length, so that every
 * checkpoint is cut where it actually reasons (a fixed 8-token point measures a level, not a slope):
 * each rounded to a whole token, at least 1, duplicates dropped.
 */
export function relativeBudgets(medianReasoning: number, fractions: readonly number[]): number[] {
  return [...new Set(fractions.map((f) => Math.max(1, Math.round(f * medianReasoning))))].sort((a, b) => a - b);
}

/** The SFT traces a campaign synthesizes (its hash names the dataset checkpoint). */
export function datasetSpec(config: CampaignConfig): DatasetSpec {
  return {
    task: config.task.name,
    difficulty: config.task.difficulty,
    splits: config.task.splits,
    seed: config.seed,
    examples: config.data.sftExamples,
    style: config.data.style,
    teacher: { ...config.data.teacher, maxChars: teacherMaxChars(config) },
    ...(config.task.sha256 && { dataset: config.task.sha256 }),
  };
}

/** The held-out problems of a split: fixed by the evaluation seed, so campaigns of any training seed compare on the same ones. */
export function heldOutSpec(config: CampaignConfig): DatasetSpec {
  return { ...datasetSpec(config), seed: config.eval.seed };
}

/** How held-out problems are decoded: the one definition that evaluation, SFT validation, scaling and bench share. */
export function decodeSettings(config: CampaignConfig): DecodeSettings {
  const e = config.eval;
  return { maxNewTokens: e.maxNewTokens, batchSize: e.batchSize, seed: e.seed, garbage: config.rl.garbage };
}

/**
 * The temperature sweep of a held-out split and how many of its problems: validation, where a
 * checkpoint's setting is chosen, or test, where it is reported.
 */
export function sweepSettings(config: CampaignConfig, split: 'val' | 'test'): SweepOptions & { problems: number } {
  const e = config.eval;
  const size = split === 'test' ? { problems: e.problems, samples: e.samples } : e.validation;
  return { ...decodeSettings(config), temperatures: e.temperatures, ...size };
}

/** The RL prompt pool; `kept`: the stream positions the difficulty filter kept (rl.filter). */
export function promptSource(config: CampaignConfig, kept?: number[]): PromptSource {
  return {
    task: config.task.name,
    seed: config.seed,
    difficulty: config.task.difficulty,
    splits: config.task.splits,
    ...(config.task.sha256 && { dataset: config.task.sha256 }),
    ...(kept && { kept }),
  };
}
