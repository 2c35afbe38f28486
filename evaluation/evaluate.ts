/**
 * Evaluation of a model on held-out problems: n samples per problem (or one greedy decode),
 * judged by the RL reward rules, summarised as pass@1 / pass@k / maj@k and friends.
 * Deterministic by seed: sample j of a problem always draws from the same stream.
 */
import type { SampleOptions } from '../model/sample';
import type { Decodable, Policy, ResponseFormat } from '../model/policy';
import { BASE_TOKENIZER } from '../model/tokenizer';
import type { RlConfig } from '../rl/config';
import { judge } from '../rl/reward';
import type { Problem } from '../tasks/types';
import { ConfigError } from '../util/errors';
import { Prng } from '../util/prng';
import { decodeAll, type Progress } from './decode';
import { summarise, type Metrics, type ProblemRecord, type SampleRecord } from './metrics';

export interface EvalOptions extends Omit<SampleOptions, 'maxNewTokens'> {
  /** n: samples per problem (1 when greedy). */
  samples: number;
  maxNewTokens: number;
  /** Rows decoded together. */
  batchSize: number;
  seed: number;
  garbage: RlConfig['garbage'];
  /** The k of pass@k and maj@k (default 1, 2, 4, ... n). */
  ks?: number[];
  onProgress?: Progress;
}

export interface EvalReport {
  metrics: Metrics;
  problems: ProblemRecord[];
}

/**
 * The stream of sample j of a problem: independent of batching, problem order and other samples.
 * Version 2: Prng.stream (version 1's forked streams shared their first draw, so every sample's
 * first token was drawn with nearly the same uniform).
 */
export function sampleStream(seed: number, problemId: string, sample: number): Prng {
  return Prng.stream(seed, `eval ${problemId} ${sample}`);
}
/** Part of every cached evaluation's key: results sampled with other streams are not reused. */
export const SAMPLE_STREAMS = 2;

/** A model to evaluate that is not a policy (e.g. a served base): its generator and how prompts are written and responses read. */
export interface FormattedModel {
  generator: Decodable;
  format: Pick<ResponseFormat, 'encodePrompt' | 'parseResponse'>;
}

function parts(model: Policy | FormattedModel): FormattedModel {
  return 'forward' in model ? { generator: model.decodable(), format: model.format } : model;
}

/** Responses (token ids after the prompt) as [problem][sample]. */
export async function sampleResponses(
  model: Policy | FormattedModel,
  problems: readonly Problem[],
  opts: EvalOptions,
): Promise<number[][][]> {
  if (!problems.length) throw new Error('evaluate: no problems');
  if (!(Number.isInteger(opts.samples) && opts.samples >= 1))
    throw new Error(`evaluate: samples must be a positive integer, got ${opts.samples}`);
  if (opts.greedy && opts.samples !== 1) throw new Error('evaluate: greedy decoding gives one sample per problem');
  const n = opts.samples;
  const { generator, format } = parts(model);
  const rows = problems.flatMap((p) =>
    Array.from({ length: n }, (_, j) => ({
      prompt: format.encodePrompt(p.prompt),
      rng: sampleStream(opts.seed, p.id, j),
    })),
  );
  const context = generator.contextLength;
  const long = rows.findIndex((r) => r.prompt.length >= context);
  if (long >= 0) {
    const p = problems[Math.floor(long / n)];
    throw new ConfigError(
      `problem ${p.id}: its prompt is ${rows[long].prompt.length} tokens, the model's context ${context} (no room to answer)`,
    );
  }
  const out = await decodeAll(
    generator,
    rows.map((r) => r.prompt),
    rows.map((r) => r.rng),
    { ...opts, phase: 'sampling' },
  );
  return problems.map((_, i) => out.slice(i * n, (i + 1) * n));
}

export function scoreSample(
  problem: Problem,
  response: readonly number[],
  garbage: RlConfig['garbage'],
  tokenizer: Pick<ResponseFormat, 'parseResponse'> = BASE_TOKENIZER,
): SampleRecord {
  const v = judge(problem, response, garbage, tokenizer);
  return {
    correct: v.correct,
    garbage: v.garbage,
    // A truncated answer line may be the prefix of another answer: it does not vote.
    answer: v.garbage === 'truncated' ? null : v.answer,
    length: response.length,
    steps: v.steps,
  };
}

export function scoreResponses(
  problems: readonly Problem[],
  responses: readonly (readonly number[])[][],
  garbage: RlConfig['garbage'],
  tokenizer: Pick<ResponseFormat, 'parseResponse'> = BASE_TOKENIZER,
): ProblemRecord[] {
  return problems.map((p, i) => ({
    task: p.task,
    id: p.id,
    difficulty: p.difficulty,
    samples: responses[i].map((r) => scoreSample(p, r, garbage, tokenizer)),
  }));
}

export async function evaluate(model: Policy | FormattedModel, problems: readonly Problem[], opts: EvalOptions): Promise<EvalReport> {
  const records = scoreResponses(problems, await sampleResponses(model, problems, opts), opts.garbage, parts(model).format);
  return { metrics: summarise(records, opts.ks), problems: records };
}
