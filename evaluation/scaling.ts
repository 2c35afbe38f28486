/**
 * Inference scaling the T1 way (T1.md section 4): cut the reasoning at a token budget, append the
 * answer cue, let the model write its final answer, and score the whole response; the untruncated
 * run is the last point. Plus the steps view: accuracy against reasoning steps.
 *
 * Every sample draws from its own stream, so generating with a budget of b tokens reproduces the
 * untruncated sample up to the cut. The sweep therefore samples once, takes each budget's reasoning
 * as the prefix of that sample, and only decodes the forced answers, continuing the stream where
 * the cut left it. A sample whose reasoning fits the budget (at most b tokens before its first ANS
 * or EOS) is the untruncated sample itself; one that ended on EOS without an answer stays so.
 */
import { ANS, EOS, tokenizerOf } from '../model/tokenizer';
import type { Transformer } from '../model/transformer';
import type { Problem } from '../tasks/types';
import type { Prng } from '../util/prng';
import { decodeAll } from './decode';
import { sampleResponses, sampleStream, scoreResponses, type EvalOptions } from './evaluate';
import { accuracyBySteps, summarise, type Metrics, type ProblemRecord } from './metrics';
import { median } from './stats';

export interface ScalingOptions extends EvalOptions {
  /** Reasoning budgets in tokens, strictly increasing. */
  budgets: number[];
  /** Tokens the model may write after a forced answer cue (default 40: an answer line and its check). */
  answerTokens?: number;
}

export interface BudgetPoint {
  /** Reasoning tokens allowed; maxNewTokens for the untruncated run. */
  budget: number;
  untruncated: boolean;
  /** Share of samples cut at the budget and made to answer. */
  forced: number;
  metrics: Metrics;
  problems: ProblemRecord[];
}

export interface ScalingReport {
  /** The budgets in order, then the untruncated run. */
  points: BudgetPoint[];
  /** Median reasoning length (tokens before the answer) of the untruncated samples: what relative budgets scale. */
  medianReasoning: number;
  /** Accuracy by reasoning steps, over the untruncated samples. */
  steps: { steps: number; samples: number; accuracy: number }[];
}

/** Tokens before the first ANS or EOS (the whole response when it has neither). */
export function reasoningLength(response: readonly number[]): number {
  const i = response.findIndex((t) => t === ANS || t === EOS);
  return i < 0 ? response.length : i;
}

export async function inferenceScaling(model: Transformer, problems: readonly Problem[], opts: ScalingOptions): Promise<ScalingReport> {
  opts.budgets.forEach((b, i) => {
    if (!Number.isInteger(b) || b < 1 || (i > 0 && b <= opts.budgets[i - 1])) {
      throw new RangeError(`inferenceScaling: budgets must be strictly increasing positive integers, got ${opts.budgets.join(',')}`);
    }
  });
  const responses = await sampleResponses(model, problems, opts);
  const total = responses.length * opts.samples;
  const points: BudgetPoint[] = [];
  for (const budget of opts.budgets) {
    const cut = await responsesAtBudget(model, problems, responses, budget, opts);
    const records = scoreResponses(problems, cut.responses, opts.garbage, tokenizerOf(model.config));
    points.push({ budget, untruncated: false, forced: cut.forced / total, metrics: summarise(records, opts.ks), problems: records });
  }
  const full = scoreResponses(problems, responses, opts.garbage, tokenizerOf(model.config));
  points.push({ budget: opts.maxNewTokens, untruncated: true, forced: 0, metrics: summarise(full, opts.ks), problems: full });
  return { points, steps: accuracyBySteps(full), medianReasoning: median(responses.flat().map(reasoningLength)) };
}

/**
 * The untruncated responses ([problem][sample], from `sampleResponses` with the same options) under
 * a reasoning budget: reasoning longer than the budget is cut there and the model made to answer.
 */
export async function responsesAtBudget(
  model: Transformer,
  problems: readonly Problem[],
  responses: number[][][],
  budget: number,
  opts: Omit<ScalingOptions, 'budgets'>,
): Promise<{ responses: number[][][]; forced: number }> {
  const C = model.config.contextLength;
  const rows: { i: number; j: number; prefix: number[]; kept: number; rng: Prng }[] = [];
  problems.forEach((p, i) =>
    responses[i].forEach((r, j) => {
      if (reasoningLength(r) <= budget) return;
      const prompt = tokenizerOf(model.config).encodePrompt(p.prompt);
      // The kept reasoning and the cue must fit the context.
      const kept = Math.min(budget, C - 1 - prompt.length);
      rows.push({ i, j, prefix: [...prompt, ...r.slice(0, kept), ANS], kept, rng: continuation(opts, p.id, j, kept) });
    }),
  );
  const answers = await decodeAll(
    model,
    rows.map((r) => r.prefix),
    rows.map((r) => r.rng),
    { ...opts, maxNewTokens: opts.answerTokens ?? 40, phase: `budget ${budget}` },
  );
  const out = responses.map((rs) => rs.slice());
  rows.forEach((r, k) => (out[r.i][r.j] = [...responses[r.i][r.j].slice(0, r.kept), ANS, ...answers[k]]));
  return { responses: out, forced: rows.length };
}

/** Sample j's stream as it stands after its first `drawn` tokens (one uniform each unless greedy). */
function continuation(opts: Pick<ScalingOptions, 'seed' | 'greedy'>, problemId: string, j: number, drawn: number): Prng {
  const rng = sampleStream(opts.seed, problemId, j);
  if (!opts.greedy) for (let t = 0; t < drawn; t++) rng.next();
  return rng;
}
