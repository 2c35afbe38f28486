/**
 * Evaluation metrics over judged samples: pass@1, unbiased pass@k, maj@k, accuracy by difficulty,
 * garbage rate, length and reasoning steps. Pure functions of the per-problem records.
 */
import type { GarbageReason } from '../rl/reward';
import { getVerifier } from '../tasks/registry';
import type { TaskName } from '../tasks/types';

/** One judged response (as `judge` scores RL rewards). */
export interface SampleRecord {
  correct: boolean;
  garbage: GarbageReason | null;
  /** The answer line when it was written out completely, else null (a vote abstains). */
  answer: string | null;
  /** Response tokens, EOS included. */
  length: number;
  /** Reasoning lines (countSteps). */
  steps: number;
}

export interface ProblemRecord {
  task: TaskName;
  id: string;
  difficulty: number;
  /** In sampling order: maj@k votes over the first k. */
  samples: SampleRecord[];
}

export interface Metrics {
  problems: number;
  /** Samples per problem. */
  samples: number;
  /** Mean over problems of the share of correct samples. */
  passAt1: number;
  /** By k (as a string key, for JSON). */
  passAtK: Record<string, number>;
  majAtK: Record<string, number>;
  byDifficulty: { difficulty: number; problems: number; accuracy: number }[];
  garbageRate: number;
  meanLength: number;
  meanSteps: number;
}

/**
 * Unbiased pass@k from n samples of which c are correct: 1 - C(n-c, k) / C(n, k), as the product
 * 1 - prod_{i=n-c+1..n} (1 - k/i), which never forms the (huge) binomials.
 */
export function passAtK(n: number, c: number, k: number): number {
  if (!(Number.isInteger(n) && Number.isInteger(c) && Number.isInteger(k)) || c < 0 || c > n || k < 1 || k > n) {
    throw new RangeError(`passAtK: need integers 0 <= c <= n and 1 <= k <= n, got n=${n} c=${c} k=${k}`);
  }
  if (n - c < k) return 1; // every k-subset holds a correct sample
  let fail = 1;
  for (let i = n - c + 1; i <= n; i++) fail *= 1 - k / i;
  return 1 - fail;
}

/**
 * Majority vote over the first k samples. Answers vote under the task's voteKey, else its parsed
 * form (so `3 + 4`, `3+4` and `4+3` agree); unparseable or missing answers abstain. Ties go to the
 * answer that appeared first. Returns the index of the winner's first sample, or null when nobody voted.
 */
export function majorityVote(task: TaskName, samples: readonly Pick<SampleRecord, 'answer'>[], k: number): number | null {
  const verifier = getVerifier(task);
  const votes = new Map<string, { first: number; count: number }>();
  samples.slice(0, k).forEach((s, i) => {
    const parsed = s.answer === null ? null : verifier.parseAnswer(s.answer);
    if (parsed === null) return;
    const key = verifier.voteKey ? verifier.voteKey(parsed) : JSON.stringify(parsed);
    const v = votes.get(key);
    if (v) v.count++;
    else votes.set(key, { first: i, count: 1 });
  });
  let best: { first: number; count: number } | null = null;
  // Map iteration follows first appearance, so a strict > keeps the earliest of tied answers.
  for (const v of votes.values()) if (!best || v.count > best.count) best = v;
  return best ? best.first : null;
}

/** Share of problems whose majority answer over the first k samples is correct. */
export function majAtK(problems: readonly ProblemRecord[], k: number): number {
  return mean(
    problems.map((p) => {
      const w = majorityVote(p.task, p.samples, k);
      return w !== null && p.samples[w].correct ? 1 : 0;
    }),
  );
}

/** 1, 2, 4, ... up to n, and n itself. */
export function defaultKs(n: number): number[] {
  const ks: number[] = [];
  for (let k = 1; k < n; k *= 2) ks.push(k);
  ks.push(n);
  return ks;
}

export function summarise(
  problems: readonly ProblemRecord[],
  ks: readonly number[] = defaultKs(problems[0]?.samples.length ?? 1),
): Metrics {
  if (!problems.length) throw new Error('summarise: no problems');
  const n = problems[0].samples.length;
  if (problems.some((p) => p.samples.length !== n)) throw new Error('summarise: every problem needs the same number of samples');
  const correct = problems.map((p) => p.samples.filter((s) => s.correct).length);
  const all = problems.flatMap((p) => p.samples);
  const difficulties = [...new Set(problems.map((p) => p.difficulty))].sort((a, b) => a - b);
  return {
    problems: problems.length,
    samples: n,
    passAt1: mean(correct.map((c) => c / n)),
    passAtK: Object.fromEntries(ks.map((k) => [String(k), mean(correct.map((c) => passAtK(n, c, k)))])),
    majAtK: Object.fromEntries(ks.map((k) => [String(k), majAtK(problems, k)])),
    byDifficulty: difficulties.map((d) => {
      const idx = problems.flatMap((p, i) => (p.difficulty === d ? [i] : []));
      return { difficulty: d, problems: idx.length, accuracy: mean(idx.map((i) => correct[i] / n)) };
    }),
    garbageRate: mean(all.map((s) => (s.garbage ? 1 : 0))),
    meanLength: mean(all.map((s) => s.length)),
    meanSteps: mean(all.map((s) => s.steps)),
  };
}

/** T1's second view: accuracy of the samples grouped by how many reasoning steps they wrote. */
export function accuracyBySteps(problems: readonly ProblemRecord[]): { steps: number; samples: number; accuracy: number }[] {
  const groups = new Map<number, number[]>();
  for (const s of problems.flatMap((p) => p.samples)) {
    const g = groups.get(s.steps) ?? [];
    g.push(s.correct ? 1 : 0);
    groups.set(s.steps, g);
  }
  return [...groups.entries()].sort(([a], [b]) => a - b).map(([steps, c]) => ({ steps, samples: c.length, accuracy: mean(c) }));
}

function mean(xs: readonly number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0;
}
