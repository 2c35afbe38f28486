/**
 * JSONL math benchmarks evaluated against an OpenAI-compatible endpoint: one request per problem
 * asking for n samples, a bounded number of requests in flight, every sample scored by the math
 * answer checker.
 */
import { readFile } from 'node:fs/promises';
import { checkAnswer } from '../tasks/math-answer';
import type { CompletionClient } from '../tasks/openai';
import { parseProblemLines, problemText } from '../tasks/jsonl';

export interface BenchmarkProblem {
  id: string;
  problem: string;
  answer: string;
}

/** Parses JSONL (every bad line reported); blank lines are skipped, ids default to the line number and must be unique. */
export function parseBenchmark(text: string, source = 'benchmark'): BenchmarkProblem[] {
  const seen = new Map<string, number>();
  return parseProblemLines(source, text, (l, lineNo) => {
    const id = l.id ?? String(lineNo);
    if (seen.has(id)) return [`id "${id}" already used on line ${seen.get(id)}`];
    seen.set(id, lineNo);
    return [];
  }).map(({ line, lineNo }) => ({ id: line.id ?? String(lineNo), problem: problemText(line), answer: line.answer }));
}

export async function loadBenchmark(path: string): Promise<BenchmarkProblem[]> {
  return parseBenchmark(await readFile(path, 'utf8'), path);
}

export interface EvaluateOptions {
  client: CompletionClient;
  model: string;
  problems: BenchmarkProblem[];
  /** Samples per problem (the request's n). Default 1. */
  samples?: number;
  /** Requests in flight. Default 8. */
  concurrency?: number;
  maxTokens: number;
  /** 0 asks the server for greedy decoding. */
  temperature: number;
  /** Prompt sent for each problem; `{problem}` is replaced by its text. Default '{problem}'. */
  template?: string;
  onProgress?: (p: { done: number; total: number; correct: number }) => void;
}

export interface SampleRecord {
  text: string;
  finishReason: string | null;
  extracted: string | null;
  correct: boolean;
}

export interface ProblemRecord {
  id: string;
  answer: string;
  samples: SampleRecord[];
  /** Fraction of this problem's samples that are correct. */
  passAt1: number;
}

export interface EndpointEvaluation {
  model: string;
  endpoint: string;
  problems: number;
  samples: number;
  /** Fraction of problems whose first sample is correct (with greedy decoding: the accuracy). */
  accuracy: number;
  /** Mean over problems of the fraction of correct samples: the unbiased pass@1 estimate. */
  passAt1: number;
  records: ProblemRecord[];
}

/** Scores every problem; the first request that fails for good (after the client's retries) fails the evaluation. */
export async function evaluateEndpoint(o: EvaluateOptions): Promise<EndpointEvaluation> {
  const n = o.samples ?? 1;
  const template = o.template ?? '{problem}';
  const records = new Array<ProblemRecord>(o.problems.length);
  let next = 0;
  let done = 0;
  let correct = 0;
  let failed = false;
  const worker = async () => {
    while (!failed && next < o.problems.length) {
      const i = next++;
      const p = o.problems[i];
      try {
        const choices = await o.client.complete({
          model: o.model,
          prompt: template.replaceAll('{problem}', p.problem),
          maxTokens: o.maxTokens,
          temperature: o.temperature,
          n,
        });
        const samples = choices.map((c) => ({ ...c, ...checkAnswer(c.text, p.answer) }));
        records[i] = { id: p.id, answer: p.answer, samples, passAt1: samples.filter((s) => s.correct).length / n };
      } catch (e) {
        failed = true; // stop handing out problems; requests in flight finish
        throw e;
      }
      correct += records[i].samples[0].correct ? 1 : 0;
      o.onProgress?.({ done: ++done, total: o.problems.length, correct });
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(o.concurrency ?? 8, o.problems.length)) }, worker));
  return {
    model: o.model,
    endpoint: o.client.shownUrl,
    problems: records.length,
    samples: n,
    accuracy: correct / records.length,
    passAt1: records.reduce((s, r) => s + r.passAt1, 0) / records.length,
    records,
  };
}
