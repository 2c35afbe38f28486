/**
 * The small-scale reproduction of T1's claims: which campaigns run, with which configs. Pure (no
 * tfjs, no Temporal), so the reproduce workflow, the CLI and the tests share it.
 *
 * Per seed: a base campaign (the quick preset with more training per step and a wider
 * inference-scaling sweep) and one ablation campaign per arm, each starting RL from the base
 * campaign's SFT model. Every arm samples the same number of responses per step (B * K) for the
 * same number of steps, so arms compare at equal sampling compute.
 */
import { z } from 'zod';
import { CampaignConfigSchema, setPaths, type CampaignConfig } from '../config/campaign';
import { UserError } from '../util/errors';

export interface Arm {
  name: string;
  /** What the arm tests, in the report's words. */
  claim: string;
  /** Dotted config paths set on top of the base config. */
  changes: Record<string, unknown>;
  /** Oversampling arms: this K, with B scaled so that B * K stays the base campaign's. */
  k?: number;
  /** The arm has more of the ingredient than the base (K = 64), so the paper's claim is that it beats the base. */
  strengthens?: boolean;
}

/** The ablations; the base campaign itself is the arm 'base'. B * K stays the base's and every sample enters the update. */
export const ARMS: Arm[] = [
  { name: 'k4', claim: 'oversampling: K = 4 instead of the base K (B scaled up to keep B x K)', changes: {}, k: 4 },
  { name: 'k64', claim: 'oversampling: K = 64 instead of the base K (B scaled down to keep B x K)', changes: {}, k: 64, strengthens: true },
  { name: 'frozen-anchor', claim: 'KL to the frozen SFT model instead of a refreshed anchor', changes: { 'rl.anchor.mode': 'frozen' } },
  { name: 'no-kl', claim: 'no KL penalty', changes: { 'rl.betaKl': 0 } },
  { name: 'no-entropy', claim: 'no entropy bonus', changes: { 'rl.alphaEnt': 0 } },
  { name: 'no-garbage-penalty', claim: 'no garbage penalty', changes: { 'rl.garbagePenalty': 0 } },
];

/**
 * Measured on the 2-core reference machine (tfjs-node) for the quick model, used only to size
 * the plan to --minutes; the report gives the time each campaign actually took.
 */
export const COST = {
  /** Synthesis, SFT and the SFT evaluation of one seed. */
  sftSeconds: 220,
  /** One RL step of a reproduction campaign (B * K = 768). */
  rlStepSeconds: 5.5,
  /** One held-out evaluation (500 problems x (4 samples + greedy)). */
  evalSeconds: 15,
  /** The base campaign's inference-scaling sweep. */
  scalingSeconds: 150,
};

/**
 * Every reproduction campaign trains more than the quick preset, which is sized for a 12-minute
 * `npm start`: SFT on 64 sequences per step, and RL steps of B x K = 768 so that at equal sampling
 * compute the K = 64 arm still draws B = 12 prompts per step. RL epochs come from `--minutes`.
 * Sampler calls of 384 rows give every arm's step 2 shards for the quick preset's 2 sampler processes.
 */
export const REPRODUCTION_CHANGES = {
  'sft.batchSize': 64,
  'sft.microBatchSize': 32,
  'rl.promptsPerStep': 48,
  'rl.sampleBatch': 384,
  'rl.stepsPerEpoch': 8,
};

export const ReproduceOptionsSchema = z.object({
  /** Wall-clock budget of the whole reproduction on the reference machine. */
  minutes: z.number().positive().default(150),
  seeds: z.array(z.number().int().min(0)).min(2, 'at least 2 seeds, for standard errors').default([1, 2]),
  /** Which ablation arms to run (default: all). */
  arms: z.array(z.enum(ARMS.map((a) => a.name) as [string, ...string[]])).optional(),
});
export type ReproduceOptions = z.infer<typeof ReproduceOptionsSchema>;

export interface PlannedCampaign {
  seed: number;
  arm: string;
  config: CampaignConfig;
}

export interface ReproductionPlan {
  epochs: number;
  stepsPerEpoch: number;
  /** Estimated minutes on the reference machine. */
  estimatedMinutes: number;
  base: PlannedCampaign[];
  /** Per seed, the ablations that start from that seed's base SFT. */
  ablations: PlannedCampaign[];
}

export class PlanError extends UserError {
  override name = 'PlanError';
}

/** Sets dotted paths on a copy of `config` and validates the result. */
export function withChanges(config: CampaignConfig, changes: Record<string, unknown>): CampaignConfig {
  return CampaignConfigSchema.parse(setPaths(config, changes));
}

/** An arm's config changes on top of `base`; an oversampling arm's B keeps B * K. */
function armChanges(a: Arm, base: CampaignConfig): Record<string, unknown> {
  if (a.k === undefined) return a.changes;
  const perStep = base.rl.promptsPerStep * base.rl.samplesPerPrompt;
  if (perStep % a.k !== 0) throw new PlanError(`arm ${a.name}: B x K = ${perStep} of the base campaign is not a multiple of K = ${a.k}`);
  return { ...a.changes, 'rl.samplesPerPrompt': a.k, 'rl.updateSamples': a.k, 'rl.promptsPerStep': perStep / a.k };
}

export function reproductionPlan(quick: CampaignConfig, options: ReproduceOptions): ReproductionPlan {
  const arms = options.arms ? ARMS.filter((a) => options.arms!.includes(a.name)) : ARMS;
  const seeds = options.seeds;
  const campaigns = seeds.length * (1 + arms.length);
  const fixed = seeds.length * (COST.sftSeconds + COST.scalingSeconds) + campaigns * COST.evalSeconds;
  const stepsPerEpoch = REPRODUCTION_CHANGES['rl.stepsPerEpoch'];
  const epochs = Math.floor((options.minutes * 60 - fixed) / (campaigns * stepsPerEpoch * COST.rlStepSeconds));
  // Three epochs give the 33 / 67 / 100% points of the inference-scaling sweep.
  if (epochs < 3) {
    const needed = Math.ceil((fixed + 3 * campaigns * stepsPerEpoch * COST.rlStepSeconds) / 60);
    throw new PlanError(
      `--minutes ${options.minutes} is too short for ${seeds.length} seeds x ${1 + arms.length} campaigns with 3 RL epochs each; give at least ${needed}`,
    );
  }
  const base = withChanges(quick, {
    'rl.epochs': epochs,
    ...REPRODUCTION_CHANGES,
    // From well below to above the natural trace length (the quick model's answers average ~45 tokens).
    'eval.scaling.budgets': [8, 16, 32, 64, 96],
    'eval.scaling.problems': 150,
    'eval.scaling.samples': 2,
  });
  const estimatedMinutes = (fixed + epochs * campaigns * stepsPerEpoch * COST.rlStepSeconds) / 60;
  return {
    epochs,
    stepsPerEpoch,
    estimatedMinutes,
    base: seeds.map((seed) => ({ seed, arm: 'base', config: withChanges(base, { seed }) })),
    ablations: seeds.flatMap((seed) =>
      arms.map((a) => ({ seed, arm: a.name, config: withChanges(base, { ...armChanges(a, base), seed, 'eval.scaling.enabled': false }) })),
    ),
  };
}
