/**
 * RL hyperparameters (T1 section 3). Defaults follow the paper where it pins a value (K = 64,
 * temperature 1.2, beta_kl 2e-4, B = 32); the rest are our choices, and presets shrink them.
 */
import { z } from 'zod';
import { AdamWConfigSchema } from '../training/adamw-config';

export const GarbageConfigSchema = z.object({
  /** Length in tokens of the n-grams whose repetition is measured (the tokenizer is per character). */
  ngram: z.number().int().min(2).default(8),
  /**
   * Repetition is heavy when more than this share of the response's n-grams repeat an earlier one.
   * Teacher traces stay below 0.43 at n = 8 (max over 6000 traces of both tasks); a line looped
   * eight times scores 0.86.
   */
  maxRepeatFraction: z.number().min(0).max(1).default(0.5),
});

export const PpoConfigSchema = z.object({
  /** Clipped-ratio passes over minibatches instead of one plain policy-gradient step. */
  enabled: z.boolean().default(false),
  /** Ratio clip epsilon (eps_low): pi / pi_old is kept in [1 - clip, 1 + clipHigh]. */
  clip: z.number().positive().default(0.2),
  /**
   * eps_high, the upper clip; default `clip` (symmetric). DAPO's clip-higher (e.g. 0.28 against 0.2)
   * lets unlikely tokens with A > 0 grow further in one batch, which holds entropy up.
   */
  clipHigh: z.number().positive().optional(),
  /**
   * Dual clip c > 1 (verl's clip_ratio_c): for A < 0 the objective is max(min(rho A, clip(rho) A), c A),
   * so a token whose ratio has run far above 1 with A < 0 stops pushing with unbounded weight. Absent: off.
   */
  dualClip: z.number().gt(1).optional(),
  /** Updates per batch: passes over the selected samples, each in minibatches. */
  epochs: z.number().int().positive().default(2),
  /** Sequences per optimizer step. */
  minibatch: z.number().int().positive().default(64),
});

export const AnchorConfigSchema = z.object({
  /** refresh: anchor := policy every E RL epochs; ema: blend after every step; frozen: never moves. */
  mode: z.enum(['refresh', 'ema', 'frozen']).default('refresh'),
  /** E for refresh mode. */
  refreshEveryEpochs: z.number().int().positive().default(1),
  /** lambda for ema mode: anchor := lambda * anchor + (1 - lambda) * policy after each step. */
  emaLambda: z.number().min(0).max(1).default(0.99),
});

export const FilterConfigSchema = z.object({
  /** Drop too-easy prompts before RL (the paper's optional filter). */
  enabled: z.boolean().default(false),
  /** Samples per prompt drawn from the SFT model to estimate its pass rate. */
  samples: z.number().int().positive().default(16),
  /** Keep prompts whose pass rate is at most this. */
  maxPassRate: z.number().min(0).max(1).default(0.3),
  /** Candidate prompts examined from the start of the RL pool's stream. */
  candidates: z.number().int().positive().default(1024),
});

export const RolloutConfigSchema = z.object({
  /**
   * local: the trainer samples in its own process. workers: each step's prompts go out in shards
   * to rollout workers (\`t1 worker --role rollout\`, task queue t1-rollout). Both give the same bits.
   */
  mode: z.enum(['local', 'workers']).default('local'),
  /**
   * Prompts per shard (workers mode). Its K rows must be whole sampler calls (a multiple of
   * sampleBatch), so the rows batched together, and so the bits, never depend on the shard size.
   * Default: the fewest prompts that fill whole sampler calls.
   */
  shardPrompts: z.number().int().positive().optional(),
  /**
   * local mode: sampler processes on this machine, each running one TensorFlow thread, that take
   * the step's shards as they come free (rl/sampler-pool); 1 samples in the trainer's process.
   * At RL batch sizes a decode step is a chain of small ops, where a second TensorFlow thread costs
   * more than it gives: processes are the faster way to use more cores. Same bits either way.
   */
  processes: z.number().int().min(1).max(64).default(1),
});

export const KlConfigSchema = z.object({
  /**
   * reward: beta * (d_i - group mean d) comes off the shaped reward (T1), d_i the sequence sum of the
   * per-token estimator under the sampler's log-probs (detached); loss: beta * (the per-token estimator
   * aggregated like the policy-gradient term) is added to the loss, its gradient through pi (GRPO style).
   */
  placement: z.enum(['reward', 'loss']).default('reward'),
  /**
   * Per-token estimator of KL(pi || anchor) from x = log pi - log pi_anchor (Schulman's k1, k2, k3):
   * k1 = x; k2 = x^2 / 2; k3 = exp(-x) + x - 1 (unbiased, always >= 0, low variance).
   */
  estimator: z.enum(['k1', 'k2', 'k3']).default('k1'),
});

export const DynamicSamplingConfigSchema = z.object({
  /**
   * DAPO dynamic sampling: groups whose K task rewards are all equal (no signal) are dropped and the
   * step samples further prompts from the pool, continuing the cursor, until B informative groups
   * (or maxTries extra rounds); the update trains on the informative groups only.
   */
  enabled: z.boolean().default(false),
  /** Extra sampling rounds at most; each asks for as many prompts as informative groups are missing. */
  maxTries: z.number().int().min(0).default(3),
});

export const OverlongConfigSchema = z.object({
  /**
   * DAPO's soft overlong punishment: Lc, the last tokens before maxNewTokens over which the task reward
   * falls linearly by up to `penalty` (rl/reward overlongPenalty); 0 turns it off.
   */
  bufferTokens: z.number().int().min(0).default(0),
  /** Size of the punishment at the length limit (and beyond it). */
  penalty: z.number().min(0).default(1),
});

/** The fields without the cross-field check, for callers that extend them (zod refuses to extend a refined object). */
export const RlConfigObject = z.object({
  /** RL epochs in a campaign. */
  epochs: z.number().int().positive().default(4),
  /** RL steps per epoch. */
  stepsPerEpoch: z.number().int().positive().default(50),
  /** B: prompts per step. */
  promptsPerStep: z.number().int().positive().default(32),
  /** K: responses sampled per prompt. */
  samplesPerPrompt: z.number().int().min(2).default(64),
  temperature: z.number().positive().default(1.2),
  /** Nucleus sampling; 1 disables. */
  topP: z.number().gt(0).max(1).default(1),
  /** Min-p sampling; 0 disables. */
  minP: z.number().min(0).max(1).default(0),
  /** Response length limit (the context length also cuts); a response cut before a complete answer line is garbage. */
  maxNewTokens: z.number().int().positive().default(252),
  /** M: samples per prompt that enter the update (advantages still come from all K); default all K. */
  updateSamples: z.number().int().positive().optional(),
  /**
   * How the M are chosen. balanced: alternate between right (r = 1, not garbage) and other
   * samples, each class in random order, topping up from the larger class; random: uniform.
   */
  updateSelection: z.enum(['balanced', 'random']).default('balanced'),
  /** Skip groups whose K task rewards r + p are all equal: every advantage is then KL noise only. */
  dropZeroVariance: z.boolean().default(true),
  /**
   * Advantage estimator over the shaped rewards R of each group of K. rloo: R_i - mean_{j != i} R_j
   * (T1); grpo: (R_i - group mean) / (group std + 1e-6); dr_grpo: R_i - group mean (Dr. GRPO: no std
   * scaling); reinforce_pp: R_i - group mean, whitened over the batch's response tokens (verl's
   * REINFORCE++-baseline). See rl/advantage.
   */
  advantage: z.enum(['rloo', 'grpo', 'dr_grpo', 'reinforce_pp']).default('rloo'),
  /** KL coefficient beta, applied where rl.kl.placement puts the KL term. */
  betaKl: z.number().min(0).default(2e-4),
  kl: KlConfigSchema.prefault({}),
  /**
   * Entropy bonus weight (auxiliary loss, mean over response tokens whatever rl.lossAgg is). Its weight against the
   * policy gradient therefore depends on lossAgg: a per-sequence token mean divides the gradient by about the response
   * length, so a coefficient set for sequence sums (the quick preset's 0.5) then dominates (GRPO's arm of a reproduction
   * fell to 80 % garbage in two epochs); scale it down with the length when changing lossAgg.
   */
  alphaEnt: z.number().min(0).default(1e-3),
  /** Learning rate of the RL updates after warmup. */
  lr: z.number().positive().default(1e-4),
  /**
   * RL steps over which the rate rises linearly to `lr`: a fresh AdamW's first steps are
   * lr * sign(g) whatever the gradient's size, so they start small.
   */
  warmupSteps: z.number().int().min(0).default(5),
  /** AdamW moments and decoupled decay; no decay by default: the KL term already holds the policy near the anchor. */
  optimizer: AdamWConfigSchema.prefault({ weightDecay: 0 }),
  /** Global gradient-norm clip; 0 disables. */
  gradClip: z.number().min(0).default(1),
  /**
   * How the per-token policy-gradient terms (and a loss-placed KL) become the loss, in verl's names:
   * seq-mean-token-sum: -mean_i sum_t (the paper's formula); token-mean: sum over all tokens / all
   * response tokens; seq-mean-token-mean: mean over sequences of each one's token mean (GRPO);
   * seq-mean-token-sum-norm: sum over all tokens / (maxNewTokens x sequences), a constant (Dr. GRPO).
   * Selection weights w_i weigh each sequence in every mode (rl/loss). Replaces `normalisation`
   * (sequence = seq-mean-token-sum, token = token-mean), which older configs still parse as.
   */
  lossAgg: z.enum(['token-mean', 'seq-mean-token-sum', 'seq-mean-token-mean', 'seq-mean-token-sum-norm']).default('seq-mean-token-sum'),
  garbage: GarbageConfigSchema.prefault({}),
  /** p = -garbagePenalty for a garbage response (T1: 1); 0 turns the penalty off (ablation). */
  garbagePenalty: z.number().min(0).default(1),
  /** Soft penalty on responses that run into the length limit (DAPO), added to the task reward. */
  overlong: OverlongConfigSchema.prefault({}),
  dynamicSampling: DynamicSamplingConfigSchema.prefault({}),
  ppo: PpoConfigSchema.prefault({}),
  anchor: AnchorConfigSchema.prefault({}),
  filter: FilterConfigSchema.prefault({}),
  /** Sequences per forward/backward pass in scoring and update (gradients accumulate across them). */
  microBatch: z.number().int().positive().default(16),
  /** Sequences per sampler call: the unit of batching, so it (with the seed) fixes the sampled bits. */
  sampleBatch: z.number().int().positive().default(128),
  rollout: RolloutConfigSchema.prefault({}),
});

const LEGACY_NORMALISATION = { sequence: 'seq-mean-token-sum', token: 'token-mean' } as const;

/** What a config may hold: the fields, or older configs' `normalisation` in place of lossAgg. */
type RlConfigInput = z.input<typeof RlConfigObject> & {
  /** Superseded by lossAgg; read only when lossAgg is absent (stored campaign histories hold it). */
  normalisation?: keyof typeof LEGACY_NORMALISATION;
};

/** Older configs' `normalisation` becomes lossAgg (unless lossAgg is set); the key itself is dropped. */
function legacyKeys(raw: RlConfigInput): unknown {
  if (typeof raw !== 'object' || raw === null || !('normalisation' in raw)) return raw;
  const { normalisation, ...rest } = raw;
  if (rest.lossAgg !== undefined || normalisation === undefined) return rest;
  return { ...rest, lossAgg: (LEGACY_NORMALISATION as Record<string, string>)[normalisation] ?? normalisation };
}

export const RlConfigSchema = z
  .preprocess(legacyKeys, RlConfigObject)
  .refine((c) => c.updateSamples === undefined || c.updateSamples <= c.samplesPerPrompt, {
    message: 'updateSamples (M) must not exceed samplesPerPrompt (K)',
    path: ['updateSamples'],
  })
  .refine((c) => c.rollout.shardPrompts === undefined || shardAligned(c, c.rollout.shardPrompts), {
    error: (i) => {
      const c = i.input as z.infer<typeof RlConfigObject>;
      return `${c.rollout.shardPrompts} prompts x ${c.samplesPerPrompt} samples must be a multiple of sampleBatch (${c.sampleBatch}), or cover the step's ${c.promptsPerStep} prompts; try ${defaultShardPrompts(c)}`;
    },
    path: ['rollout', 'shardPrompts'],
  })
  .refine((c) => c.overlong.bufferTokens <= c.maxNewTokens, {
    message: 'overlong.bufferTokens must not exceed maxNewTokens',
    path: ['overlong', 'bufferTokens'],
  })
  .refine((c) => c.rollout.processes === 1 || (c.rollout.mode === 'local' && rolloutShards(c).length >= c.rollout.processes), {
    error: (i) => {
      const c = i.input as z.infer<typeof RlConfigObject>;
      if (c.rollout.mode !== 'local') return 'only local mode runs sampler processes (rollout workers are processes already); set 1';
      const n = rolloutShards(c).length;
      return `${c.rollout.processes} sampler processes, but a step has ${n} shard${n === 1 ? '' : 's'} of whole sampler calls (${c.promptsPerStep} prompts x ${c.samplesPerPrompt} samples in calls of sampleBatch ${c.sampleBatch}); lower sampleBatch or use at most ${n}`;
    },
    path: ['rollout', 'processes'],
  });

type ShardFields = Pick<z.infer<typeof RlConfigObject>, 'promptsPerStep' | 'samplesPerPrompt' | 'sampleBatch'>;

/** A shard of n prompts is whole sampler calls (or the whole step), so its rows batch as they would in one process. */
function shardAligned(c: ShardFields, n: number): boolean {
  return n >= c.promptsPerStep || (n * c.samplesPerPrompt) % c.sampleBatch === 0;
}

/** The fewest prompts whose K rows fill whole sampler calls, at most the whole step. */
export function defaultShardPrompts(c: ShardFields): number {
  let n = 1;
  while (!shardAligned(c, n)) n++;
  return n;
}

/** The prompts [first, first + count) of a step's batch, as a batch of their own (rows keep their streams). */
export function shardBatch<T extends { prompts: unknown[]; first: number }>(batch: T, shard: { first: number; count: number }): T {
  return { ...batch, first: batch.first + shard.first, prompts: batch.prompts.slice(shard.first, shard.first + shard.count) };
}

/** The RL config without where rollouts run, which changes no bit: what checkpoints record and hash. */
export function resultConfig(rl: RlConfig): Omit<RlConfig, 'rollout'> {
  const { rollout: _, ...rest } = rl;
  return rest;
}

/** The step's prompts as shards [first, first + count): the unit a rollout worker samples. */
export function rolloutShards(c: ShardFields & { rollout: { shardPrompts?: number } }): { first: number; count: number }[] {
  const size = Math.min(c.rollout.shardPrompts ?? defaultShardPrompts(c), c.promptsPerStep);
  const out = [];
  for (let first = 0; first < c.promptsPerStep; first += size) out.push({ first, count: Math.min(size, c.promptsPerStep - first) });
  return out;
}

export type RlConfig = z.infer<typeof RlConfigSchema>;

/** The learning rate of RL step `step` (0-based, counted over the whole run): linear warmup, then constant. */
export function rlLearningRate(cfg: Pick<RlConfig, 'lr' | 'warmupSteps'>, step: number): number {
  return cfg.warmupSteps > 0 ? (cfg.lr * Math.min(step + 1, cfg.warmupSteps)) / cfg.warmupSteps : cfg.lr;
}

export function rlConfig(partial: z.input<typeof RlConfigSchema> = {}): RlConfig {
  return RlConfigSchema.parse(partial);
}
