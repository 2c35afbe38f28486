/**
 * `t1 eval CHECKPOINT_ID`: the inference-scaling sweep of one checkpoint on held-out test problems
 * (T1.md section 4), with pass@k, maj@k and the steps view. Problems are the campaign's test draw
 * (its eval seed), so numbers compare with the campaign's own evaluation; --seed drives sampling.
 */
import { z } from 'zod';
import { CampaignConfigSchema } from '../../config/campaign';
import type { Metrics } from '../../evaluation/metrics';
import { evaluate } from '../../evaluation/evaluate';
import { inferenceScaling, type ScalingReport } from '../../evaluation/scaling';
import { ChatFormat } from '../../formats/chat-format';
import type { PretrainedTokenizer } from '../../formats/tokenizer';
import { initBackend } from '../../model/backend';
import { Llama } from '../../model/llama';
import { llamaDecodable } from '../../model/llama-decode';
import { CheckpointId } from '../../storage/manifest';
import { decodeSettings, heldOutSpec } from '../../rules/campaign';
import { heldOut } from '../../tasks/dataset';
import { getTask } from '../../tasks/registry';
import { GENERATOR_NAMES, type GeneratorName } from '../../tasks/types';
import { connectionOptions, UsageError, type Command } from '../args';
import { loadCheckpointModel } from '../checkpoint-model';
import { isModelArg, loadModelArg } from '../pretrained';

const DEFAULTS = CampaignConfigSchema.parse({});

type Ctx = z.RefinementCtx;
const fail = (ctx: Ctx, flag: string, message: string) => {
  ctx.addIssue({ code: 'custom', message: `--${flag}: ${message}` });
  return z.NEVER;
};

const int = (flag: string, min: number) =>
  z
    .string()
    .transform((s, ctx) =>
      /^\d+$/.test(s) && Number(s) >= min ? Number(s) : fail(ctx, flag, `expected an integer >= ${min}, got "${s}"`),
    );

const Flags = z
  .object({
    // Generated problems; a JSONL benchmark is evaluated through `t1 serve` and `t1 eval --endpoint`.
    task: z.enum(GENERATOR_NAMES, {
      error: (i) => `--task: expected one of ${GENERATOR_NAMES.join(', ')}${i.input === undefined ? ' (required)' : `, got "${i.input}"`}`,
    }),
    difficulty: z
      .string()
      .transform((s, ctx) => {
        const m = /^(\d+)(?:-(\d+))?$/.exec(s);
        if (!m) return fail(ctx, 'difficulty', `expected N or MIN-MAX, got "${s}"`);
        const range = { min: Number(m[1]), max: Number(m[2] ?? m[1]) };
        return range.min <= range.max ? range : fail(ctx, 'difficulty', `MIN must not exceed MAX, got "${s}"`);
      })
      .default(DEFAULTS.task.difficulty),
    samples: int('samples', 1).optional(),
    temperature: z
      .string()
      .transform((s, ctx) =>
        s.trim() !== '' && Number(s) >= 0 && Number.isFinite(Number(s))
          ? Number(s)
          : fail(ctx, 'temperature', `expected a number >= 0 (0 = greedy), got "${s}"`),
      )
      .default(1),
    budgets: z
      .string()
      .transform((s, ctx) => {
        const bs = s.split(',').map((b) => b.trim());
        const ok = bs.every((b, i) => /^\d+$/.test(b) && Number(b) >= 1 && (i === 0 || Number(b) > Number(bs[i - 1])));
        return ok ? bs.map(Number) : fail(ctx, 'budgets', `expected strictly increasing positive integers like 32,64,128, got "${s}"`);
      })
      .default([32, 64, 128]),
    problems: int('problems', 1).default(200),
    seed: int('seed', 0).default(1),
    'max-new-tokens': int('max-new-tokens', 1).optional(),
    'answer-tokens': int('answer-tokens', 1).default(40),
    'batch-size': int('batch-size', 1).default(DEFAULTS.eval.batchSize),
    json: z.boolean().default(false),
  })
  .superRefine((f, ctx) => {
    const task = getTask(f.task);
    if (f.difficulty.min < task.minDifficulty || f.difficulty.max > task.maxDifficulty) {
      fail(
        ctx,
        'difficulty',
        `${f.task} difficulty is ${task.minDifficulty}..${task.maxDifficulty}, got ${f.difficulty.min}-${f.difficulty.max}`,
      );
    }
    if (f.temperature === 0 && f.samples !== undefined && f.samples > 1)
      fail(ctx, 'samples', 'greedy decoding (--temperature 0) gives one sample per problem');
  });

export interface EvalRequest {
  checkpoint: string;
  task: GeneratorName;
  difficulty: { min: number; max: number };
  samples: number;
  /** 0 decodes greedily. */
  temperature: number;
  budgets: number[];
  problems: number;
  seed: number;
  /** Untruncated response limit; default the model's context length. */
  maxNewTokens?: number;
  answerTokens: number;
  batchSize: number;
  json: boolean;
}

/** Validates the command line; a UsageError names every bad flag. */
export function parseEvalArgs(values: Record<string, unknown>, positionals: string[]): EvalRequest {
  if (positionals.length !== 1) throw new UsageError('expected exactly one CHECKPOINT_ID (<campaign>/<name>) or pretrained MODEL');
  const pretrained = isModelArg(positionals[0]);
  if (!pretrained && !CheckpointId.safeParse(positionals[0]).success)
    throw new UsageError(
      `CHECKPOINT_ID: expected <campaign>/<name> (or a pretrained MODEL: a file, a directory, s3:// or hf://), got "${positionals[0]}"`,
    );
  if (pretrained && values.budgets !== undefined)
    throw new UsageError('--budgets: a budget sweep needs one of our checkpoints; a pretrained MODEL is evaluated untruncated');
  const r = Flags.safeParse(Object.fromEntries(Object.keys(Flags.shape).map((k) => [k, values[k]])));
  if (!r.success) throw new UsageError(r.error.issues.map((i) => i.message).join('\n'));
  const f = r.data;
  return {
    checkpoint: positionals[0],
    task: f.task,
    difficulty: f.difficulty,
    samples: f.samples ?? (f.temperature === 0 ? 1 : 4),
    temperature: f.temperature,
    budgets: f.budgets,
    problems: f.problems,
    seed: f.seed,
    maxNewTokens: f['max-new-tokens'],
    answerTokens: f['answer-tokens'],
    batchSize: f['batch-size'],
    json: f.json,
  };
}

/** The --json contract: per-budget accuracy (the untruncated run last), then the untruncated metrics. */
export function evalJson(req: EvalRequest, report: ScalingReport) {
  const full = report.points[report.points.length - 1];
  const m: Metrics = full.metrics;
  return {
    checkpoint: req.checkpoint,
    task: req.task,
    difficulty: req.difficulty,
    problems: m.problems,
    samples: m.samples,
    temperature: req.temperature,
    seed: req.seed,
    maxNewTokens: full.budget,
    answerTokens: req.answerTokens,
    budgets: report.points.map((p) => ({
      budget: p.budget,
      accuracy: p.metrics.passAt1,
      untruncated: p.untruncated,
      forced: p.forced,
      garbageRate: p.metrics.garbageRate,
      meanLength: p.metrics.meanLength,
    })),
    passAt1: m.passAt1,
    passAtK: m.passAtK,
    majAtK: m.majAtK,
    byDifficulty: m.byDifficulty,
    garbageRate: m.garbageRate,
    meanLength: m.meanLength,
    meanSteps: m.meanSteps,
    steps: report.steps,
  };
}
export type EvalJson = ReturnType<typeof evalJson>;

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
const byK = (name: string, r: Record<string, number>) =>
  Object.entries(r)
    .map(([k, v]) => `${name}@${k} ${pct(v)}`)
    .join('  ');

export function renderEval(j: EvalJson): string {
  const d = j.difficulty.min === j.difficulty.max ? `${j.difficulty.min}` : `${j.difficulty.min}-${j.difficulty.max}`;
  const sampling = j.temperature === 0 ? 'greedy' : `${j.samples} samples at T=${j.temperature}, seed ${j.seed}`;
  return [
    `${j.checkpoint}  ${j.task} difficulty ${d}  ${j.problems} problems, ${sampling}`,
    '',
    `${'budget'.padStart(8)}  ${'accuracy'.padStart(8)}  ${'forced'.padStart(7)}  ${'garbage'.padStart(7)}  ${'length'.padStart(6)}`,
    ...j.budgets.map(
      (b) =>
        `${`${b.budget}${b.untruncated ? '*' : ''}`.padStart(8)}  ${pct(b.accuracy).padStart(8)}  ${pct(b.forced).padStart(7)}  ${pct(b.garbageRate).padStart(7)}  ${b.meanLength.toFixed(1).padStart(6)}`,
    ),
    `${' '.repeat(8)}  * untruncated (max new tokens); forced = share cut at the budget and made to answer`,
    '',
    byK('pass', j.passAtK),
    byK('maj', j.majAtK),
    `by difficulty: ${j.byDifficulty.map((x) => `${x.difficulty}: ${pct(x.accuracy)} (${x.problems})`).join('  ')}`,
    `by steps:      ${j.steps.map((x) => `${x.steps}: ${pct(x.accuracy)} (${x.samples})`).join('  ')}`,
    `garbage ${pct(j.garbageRate)}  mean length ${j.meanLength.toFixed(1)}  mean steps ${j.meanSteps.toFixed(2)}`,
  ].join('\n');
}

/** Progress on stderr, only for a terminal (stdout stays clean for --json). */
function progress(phase: string, done: number, total: number): void {
  if (process.stderr.isTTY) process.stderr.write(`\r\x1b[2K${phase} ${done}/${total}${done === total ? '\n' : ''}`);
}

/** The campaign (default settings) whose held-out problems and decoding rules the request reads: its task and difficulty. */
function campaignOf(req: Pick<EvalRequest, 'task' | 'difficulty'>) {
  return CampaignConfigSchema.parse({ task: { name: req.task, difficulty: req.difficulty } });
}

/** The task's held-out test problems: the campaign's test draw (its eval seed), so numbers compare with a campaign's own. */
function testProblems(req: EvalRequest) {
  return heldOut(heldOutSpec(campaignOf(req)), 'test', req.problems);
}

/** How the request samples (greedy at temperature 0), batched, judged by the RL garbage rules, with progress on a terminal. */
function samplingOptions(req: EvalRequest) {
  return {
    samples: req.samples,
    greedy: req.temperature === 0,
    ...(req.temperature > 0 ? { temperature: req.temperature } : {}),
    batchSize: req.batchSize,
    seed: req.seed,
    garbage: decodeSettings(campaignOf(req)).garbage,
    onProgress: progress,
  };
}

/**
 * A pretrained MODEL zero-shot on the task's held-out test problems, asked in its chat format
 * (formats/chat-format.ts): pass@k, maj@k, garbage and length of untruncated responses.
 */
/** A Llama-family model in its chat format: a pretrained base zero-shot, or a campaign checkpoint trained from one. */
async function evalPretrained(
  req: EvalRequest,
  m: { llama: Llama; tokenizer: PretrainedTokenizer; sha256: string; what: string },
): Promise<void> {
  const { llama, tokenizer } = m;
  try {
    const { metrics: m2 } = await evaluate(
      { generator: llamaDecodable(llama, tokenizer.eosId), format: new ChatFormat(tokenizer) },
      testProblems(req),
      { ...samplingOptions(req), maxNewTokens: req.maxNewTokens ?? PRETRAINED_MAX_NEW_TOKENS },
    );
    const out = {
      model: req.checkpoint,
      sha256: m.sha256,
      task: req.task,
      difficulty: req.difficulty,
      problems: m2.problems,
      samples: m2.samples,
      temperature: req.temperature,
      seed: req.seed,
      maxNewTokens: req.maxNewTokens ?? PRETRAINED_MAX_NEW_TOKENS,
      passAt1: m2.passAt1,
      passAtK: m2.passAtK,
      majAtK: m2.majAtK,
      garbageRate: m2.garbageRate,
      meanLength: m2.meanLength,
    };
    const sampling = req.temperature === 0 ? 'greedy' : `${out.samples} samples at T=${req.temperature}, seed ${req.seed}`;
    console.log(
      req.json
        ? JSON.stringify(out)
        : [
            `${req.checkpoint}  ${req.task}  ${out.problems} problems, ${sampling}, chat format, ${m.what}`,
            `pass@1 ${pct(m2.passAt1)}  ${byK('pass', m2.passAtK)}  ${byK('maj', m2.majAtK)}`,
            `garbage ${pct(m2.garbageRate)}  mean length ${m2.meanLength.toFixed(1)}`,
          ].join('\n'),
    );
  } finally {
    llama.dispose();
  }
}

/** Untruncated response limit for a pretrained model unless --max-new-tokens says otherwise (their contexts run to thousands). */
const PRETRAINED_MAX_NEW_TOKENS = 256;

export const evalCommands: Command[] = [
  {
    path: ['eval'],
    summary:
      'Evaluate a checkpoint: accuracy against reasoning budget (T1 inference scaling), pass@k, maj@k, steps; or a pretrained MODEL zero-shot in its chat format',
    usage:
      'eval CHECKPOINT_ID|MODEL --task countdown|arithmetic [--difficulty N|MIN-MAX] [--samples N] [--temperature T (0 = greedy)] [--budgets 32,64,128] [--problems N] [--seed N] [--max-new-tokens N] [--answer-tokens N] [--batch-size N] [--json]',
    options: {
      task: { type: 'string' },
      difficulty: { type: 'string' },
      samples: { type: 'string' },
      temperature: { type: 'string' },
      budgets: { type: 'string' },
      problems: { type: 'string' },
      seed: { type: 'string' },
      'max-new-tokens': { type: 'string' },
      'answer-tokens': { type: 'string' },
      'batch-size': { type: 'string' },
      json: { type: 'boolean' },
      ...connectionOptions,
    },
    async run(v, pos) {
      const req = parseEvalArgs(v, pos);
      await initBackend();
      if (isModelArg(req.checkpoint)) {
        const base = await loadModelArg(req.checkpoint, v);
        const llama = new Llama(base.config, base.weights);
        return evalPretrained(req, { llama, tokenizer: base.tokenizer, sha256: base.source.sha256, what: 'zero-shot' });
      }
      const ckpt = await loadCheckpointModel(req.checkpoint, v);
      if (ckpt.family === 'llama') {
        if (req.budgets.length) throw new UsageError('--budgets: the inference-scaling sweep runs on our transformer only');
        const what = `trained from ${ckpt.origin.base.uri}${ckpt.origin.lora ? ' (LoRA)' : ''}`;
        return evalPretrained(req, { llama: ckpt.llama(), tokenizer: ckpt.base.tokenizer, sha256: ckpt.origin.base.sha256, what });
      }
      const model = ckpt.transformer();
      try {
        const report = await inferenceScaling(model, testProblems(req), {
          ...samplingOptions(req),
          budgets: req.budgets,
          maxNewTokens: req.maxNewTokens ?? model.config.contextLength,
          answerTokens: req.answerTokens,
        });
        const out = evalJson(req, report);
        console.log(req.json ? JSON.stringify(out) : renderEval(out));
      } finally {
        model.dispose();
      }
    },
  },
];
