/** What crosses between the campaign workflow, its activities and its clients: small values only. */
import type { CampaignConfig } from '../config/campaign';
import type { CheckpointRef } from '../storage/manifest';
import type { WeightsRef } from '../storage/weights';

export type Stage =
  'synthesize' | 'evaluate-base' | 'sft' | 'evaluate-sft' | 'filter' | 'rl' | 'evaluate' | 'done' | 'cancelled' | 'failed';

/** rl.filter's outcome: the kept RL-pool positions live in `checkpoint` (one small object), counts here. */
export interface PromptFilterSummary {
  checkpoint: CheckpointRef;
  candidates: number;
  kept: number;
  meanPassRate: number;
}

/** One decoding setting on the test split: temperature null is greedy. */
export interface SettingSummary {
  temperature: number | null;
  passAt1: number;
  /** Standard error of pass@1 over problems. */
  stderr: number;
  /** Unbiased pass@k and maj@k (answer-equivalent votes), by k as a string key. */
  passAtK: Record<string, number>;
  majAtK: Record<string, number>;
  garbageRate: number;
  meanLength: number;
}

/** A paired difference (after - before) over the same test problems, with its percentile bootstrap CI. */
export interface PairedDifference {
  /** Mean per-problem difference. */
  diff: number;
  /** null with fewer than two problems. */
  lo: number | null;
  hi: number | null;
  level: number;
  /** The settings (temperature, null greedy) of before and after. */
  settings: [number | null, number | null];
}

export interface Comparison {
  /** The label of the evaluation compared against. */
  against: string;
  problems: number;
  /** pass@1, each checkpoint at the setting its validation chose. */
  passAt1: PairedDifference;
  /** pass@k at the largest k, each at the temperature its validation chose for pass@k. */
  passAtK: PairedDifference & { k: number };
}

/**
 * Held-out evaluation of one checkpoint. `accuracy` is test pass@1 at `temperature` (null: greedy),
 * the setting with the best validation pass@1; `sweep` has every setting.
 */
export interface EvalSummary {
  label: string;
  /** null: the pretrained base itself (label 'base'), measured zero-shot before SFT. */
  checkpoint: CheckpointRef | null;
  accuracy: number;
  stderr: number;
  temperature: number | null;
  greedyAccuracy: number;
  /** Test problems, and samples per problem at the chosen setting. */
  n: number;
  samples: number;
  garbageRate: number;
  meanLength: number;
  /** Absent in evaluations recorded before the sweep. */
  sweep?: {
    test: SettingSummary[];
    /** Where the settings were chosen. */
    validation: { temperature: number | null; passAt1: number; passAtK: number }[];
    /** Samples per problem at each temperature, on test and on validation. */
    samples: number;
    validationProblems: number;
    validationSamples: number;
    /** The k of the capability reading, and the temperature validation chose for it. */
    k: number;
    kTemperature: number | null;
  };
  /** The S3 key of the per-problem records. */
  records?: string;
  /** The records were there already (this evaluation computed nothing). */
  cached?: boolean;
  versus?: Comparison;
}

/** The headline numbers of an evaluation. */
export type Accuracy = Pick<EvalSummary, 'accuracy' | 'stderr' | 'greedyAccuracy' | 'temperature'>;

export interface SftSummary {
  checkpoint: CheckpointRef;
  steps: number;
  trainLoss: number;
  valLoss: number;
  valAccuracy: number;
  tokensPerS: number;
  seconds: number;
  /** Steps this execution redid after resuming from an intra-activity checkpoint. */
  resumedFromStep: number;
}

export interface RlEpochSummary {
  epoch: number;
  checkpoint: CheckpointRef;
  steps: number;
  reward: number;
  accuracy: number;
  kl: number;
  entropy: number;
  garbageRate: number;
  responseLength: number;
  zeroVarianceGroups: number;
  /** Mean prompt difficulty (countdown: numbers; arithmetic: operations). */
  difficulty: number;
  /** How much each term weighs: mean |KL term| of the shaped reward next to the task reward's spread in a group. */
  klPenalty: number;
  rewardSpread: number;
  /** Gradient norm of the entropy bonus over that of the policy-gradient term. */
  entropyGradRatio: number;
  tokensPerS: number;
  /** Tokens sampled in the epoch, dynamic-sampling refills included (absent in epochs recorded before it). */
  sampledTokens?: number;
  seconds: number;
  resumedFromStep: number;
  /** EMA mode: the anchor as blended during this epoch. */
  anchor?: CheckpointRef;
}

/** One point of an inference-scaling curve: accuracy (pass@1) of a checkpoint at a reasoning budget. */
export interface ScalingPoint {
  label: string;
  checkpoint: CheckpointRef;
  budget: number;
  untruncated: boolean;
  accuracy: number;
  /** Share of samples cut at the budget and made to answer. */
  forced: number;
  meanLength: number;
  meanSteps: number;
  /** Untruncated points only: accuracy by number of reasoning steps. */
  steps?: { steps: number; samples: number; accuracy: number }[];
  /** Untruncated points only: median reasoning length in tokens, which relative budgets scale. */
  medianReasoning?: number;
  /** Per test problem, its correct samples (of `samples`): what the slope's bootstrap resamples. Absent in points recorded before it. */
  correct?: number[];
  samples?: number;
  cached: boolean;
}

/** A finished SFT stage: its dataset, checkpoint and held-out evaluation. */
export interface SftStage {
  dataset: CheckpointRef;
  sft: SftSummary;
  evaluation: EvalSummary;
}

export interface ConfigChange {
  /** Applied at the start of this RL epoch. */
  epoch: number;
  changes: Record<string, unknown>;
}

/** Everything the workflow knows; carried across continue-as-new. */
export interface CampaignState {
  stage: Stage;
  epoch: number;
  paused: boolean;
  dataset?: CheckpointRef;
  sft?: SftSummary;
  policy?: CheckpointRef;
  anchor?: CheckpointRef;
  promptFilter?: PromptFilterSummary;
  anchorRefreshes: { epoch: number; anchor: CheckpointRef }[];
  epochs: RlEpochSummary[];
  evals: EvalSummary[];
  scaling: ScalingPoint[];
  configTimeline: ConfigChange[];
  pendingChanges: Record<string, unknown>;
}

export interface CampaignResult {
  id: string;
  status: 'completed';
  preset?: string;
  /** The effective config at the end (hyper-parameter changes applied). */
  config: CampaignConfig;
  /** Held-out pass@1 (fractions), its standard error, and greedy accuracy. */
  /** Held-out headline numbers; `gain`: final minus SFT, paired over the test problems (absent for campaigns recorded before it). */
  results: { sft: Accuracy; final: Accuracy; gain?: Comparison };
  checkpoints: { sft: CheckpointRef; final: CheckpointRef };
  /** What another campaign needs to start RL from this one's SFT model (CampaignInput.fromSft). */
  sftStage: SftStage;
  evals: EvalSummary[];
  epochs: RlEpochSummary[];
  anchorRefreshes: CampaignState['anchorRefreshes'];
  configTimeline: ConfigChange[];
  scaling: ScalingPoint[];
  promoted?: boolean;
}

export interface SftInput {
  campaignId: string;
  config: CampaignConfig;
  dataset: CheckpointRef;
  init: CheckpointRef | null;
}

export interface RlEpochInput {
  campaignId: string;
  config: CampaignConfig;
  epoch: number;
  policy: CheckpointRef;
  anchor: CheckpointRef;
  /** rl.filter's kept prompts (filterPrompts); absent: the whole RL pool. */
  filter?: CheckpointRef;
}

export interface EvaluateInput {
  campaignId: string;
  config: CampaignConfig;
  /** null: the config's pretrained base as it is. */
  checkpoint: CheckpointRef | null;
  label: string;
  /** An earlier evaluation of the same test problems to compare against (e.g. SFT, for the final checkpoint). */
  versus?: EvalSummary;
}

export interface ScalingInput {
  campaignId: string;
  config: CampaignConfig;
  checkpoint: CheckpointRef;
  label: string;
  /** Reasoning budget in tokens; null: the untruncated run. */
  budget: number | null;
  /** The checkpoint's weights as published by publishWeights (absent in campaigns started before it). */
  weights?: WeightsRef;
}

/** The campaign's activities (activities/campaign.ts implements them; the workflow proxies them by these names). */
export interface CampaignActivities {
  pinTask(input: { config: CampaignConfig }): Promise<CampaignConfig>;
  synthesize(input: { campaignId: string; config: CampaignConfig }): Promise<CheckpointRef>;
  sftTrain(input: SftInput): Promise<SftSummary>;
  filterPrompts(input: { campaignId: string; config: CampaignConfig; policy: CheckpointRef }): Promise<PromptFilterSummary>;
  rlEpoch(input: RlEpochInput): Promise<RlEpochSummary>;
  refreshAnchor(input: { campaignId: string; epoch: number; policy: CheckpointRef }): Promise<CheckpointRef>;
  evaluate(input: EvaluateInput): Promise<EvalSummary>;
}

/** Inference-scaling activities (activities/scaling.ts). */
export interface ScalingActivities {
  publishWeights(input: { checkpoint: CheckpointRef }): Promise<WeightsRef>;
  scalingPoint(input: ScalingInput): Promise<ScalingPoint>;
}
