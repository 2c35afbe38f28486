/**
 * The statistics every report states its claims with, in one place: means and standard errors,
 * Student-t intervals over seeds, a paired bootstrap over problems, and the one verdict rule.
 * Pure and deterministic (no tfjs, no node: imports; randomness only from a seeded Prng), so
 * workflow code may import it.
 */
import { Prng } from '../util/prng';

export function mean(xs: readonly number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN;
}

/** The middle value (the mean of the two middle ones for an even count). */
export function median(xs: readonly number[]): number {
  if (!xs.length) throw new Error('median: no values');
  const s = xs.slice().sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Sample standard deviation (n − 1 denominator); NaN for fewer than two values, whose spread is unknown, not zero. */
export function sampleStd(xs: readonly number[]): number {
  const n = xs.length;
  if (n < 2) return NaN;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((s, x) => s + (x - m) ** 2, 0) / (n - 1));
}

/** Standard error of the mean, s / √n; NaN for fewer than two values. */
export function standardError(xs: readonly number[]): number {
  return sampleStd(xs) / Math.sqrt(xs.length);
}

/** ln Γ(x) for x > 0 (Lanczos, g = 7, n = 9: about 1e-15 relative). */
function lnGamma(x: number): number {
  const c = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905,
    -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
  ];
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - lnGamma(1 - x);
  x -= 1;
  let a = c[0];
  const t = x + 7.5;
  for (let i = 1; i < 9; i++) a += c[i] / (x + i);
  return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(a);
}

/** Continued fraction of the incomplete beta function (modified Lentz), valid for x < (a + 1) / (a + b + 2). */
function betaFraction(x: number, a: number, b: number): number {
  const tiny = 1e-300;
  let c = 1;
  let d = 1 - ((a + b) * x) / (a + 1);
  d = 1 / (Math.abs(d) < tiny ? tiny : d);
  let h = d;
  // Converges in O(√max(a, b)) terms; the bound only guards against a bug.
  for (let m = 1; m <= 100_000; m++) {
    const m2 = 2 * m;
    for (const aa of [(m * (b - m) * x) / ((a + m2 - 1) * (a + m2)), (-(a + m) * (a + b + m) * x) / ((a + m2) * (a + m2 + 1))]) {
      d = 1 + aa * d;
      d = 1 / (Math.abs(d) < tiny ? tiny : d);
      c = 1 + aa / c;
      if (Math.abs(c) < tiny) c = tiny;
      h *= d * c;
    }
    if (Math.abs(d * c - 1) < 1e-15) return h;
  }
  throw new Error(`betaFraction: no convergence for x=${x} a=${a} b=${b}`);
}

/** Regularised incomplete beta I_x(a, b), given both x and y = 1 − x so neither loses digits to cancellation. */
function incompleteBeta(x: number, y: number, a: number, b: number): number {
  if (x <= 0) return 0;
  if (y <= 0) return 1;
  const front = Math.exp(lnGamma(a + b) - lnGamma(a) - lnGamma(b) + a * Math.log(x) + b * Math.log(y));
  return x < (a + 1) / (a + b + 2) ? (front * betaFraction(x, a, b)) / a : 1 - (front * betaFraction(y, b, a)) / b;
}

/** P(T > t) for t ≥ 0 under Student's t with df degrees of freedom. */
function tUpperTail(t: number, df: number): number {
  const t2 = t * t;
  return 0.5 * incompleteBeta(df / (df + t2), t2 / (df + t2), df / 2, 0.5);
}

/** Standard normal quantile (Acklam's rational approximation, about 1e-9 relative). */
function normalQuantile(p: number): number {
  const a = [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1, 2.506628277459239];
  const b = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
  const c = [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
  const tail = (q: number) =>
    (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  if (p < 0.02425) return tail(Math.sqrt(-2 * Math.log(p)));
  if (p > 1 - 0.02425) return -tail(Math.sqrt(-2 * Math.log(1 - p)));
  const q = p - 0.5;
  const r = q * q;
  return (
    ((((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q) /
    (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1)
  );
}

/**
 * Student-t inverse CDF: the t with P(T ≤ t) = p under df degrees of freedom (df = Infinity: the
 * normal). Bisects the exact CDF (regularised incomplete beta) to machine precision.
 */
export function tQuantile(p: number, df: number): number {
  if (!(p > 0 && p < 1)) throw new RangeError(`tQuantile: p must lie in (0, 1), got ${p}`);
  if (!(df > 0)) throw new RangeError(`tQuantile: df must be positive, got ${df}`);
  if (df === Infinity) return normalQuantile(p);
  if (p === 0.5) return 0;
  const tail = Math.min(p, 1 - p);
  let lo = 0;
  let hi = 1;
  while (tUpperTail(hi, df) > tail) [lo, hi] = [hi, 2 * hi];
  while (hi - lo > 1e-14 * hi) {
    const mid = (lo + hi) / 2;
    if (mid === lo || mid === hi) break;
    if (tUpperTail(mid, df) > tail) lo = mid;
    else hi = mid;
  }
  const t = (lo + hi) / 2;
  return p > 0.5 ? t : -t;
}

/** A two-sided interval for a mean effect. lo and hi are null when there are fewer than two observations. */
export interface Interval {
  /** Observations: seeds for a t-interval over seeds, problems for a paired bootstrap over problems. */
  n: number;
  /** Coverage, e.g. 0.95. */
  level: number;
  mean: number;
  lo: number | null;
  hi: number | null;
}

export interface TInterval extends Interval {
  /** n − 1. */
  df: number;
  /** Standard error s / √n; null when n < 2. */
  se: number | null;
  /** t_{(1+level)/2, df} × se; null when n < 2. */
  halfWidth: number | null;
}

function checkLevel(level: number): void {
  if (!(level > 0 && level < 1)) throw new RangeError(`level must lie in (0, 1), got ${level}`);
}

/** Student-t interval for the mean of xs (e.g. one value per seed): mean ± t_{(1+level)/2, n−1} × s/√n. */
export function tInterval(xs: readonly number[], level = 0.95): TInterval {
  checkLevel(level);
  const n = xs.length;
  if (!n) throw new RangeError('tInterval: no values');
  const m = mean(xs);
  if (n < 2) return { n, level, mean: m, df: 0, se: null, halfWidth: null, lo: null, hi: null };
  const se = standardError(xs);
  const halfWidth = tQuantile((1 + level) / 2, n - 1) * se;
  return { n, level, mean: m, df: n - 1, se, halfWidth, lo: m - halfWidth, hi: m + halfWidth };
}

function differences(a: readonly number[], b: readonly number[], what: string): number[] {
  if (a.length !== b.length) throw new RangeError(`${what}: ${a.length} values against ${b.length}; pairs need equal lengths`);
  return b.map((x, i) => x - a[i]);
}

/** Seed-level comparison: the t-interval (df = seeds − 1) of b_i − a_i, where a_i and b_i come from the same seed i. */
export function pairedBySeed(a: readonly number[], b: readonly number[], level = 0.95): TInterval {
  return tInterval(differences(a, b, 'pairedBySeed'), level);
}

export interface PairedBootstrap {
  /** Problems (pairs). */
  n: number;
  /** Mean of d_i = b_i − a_i. */
  meanDiff: number;
  resamples: number;
  seed: number;
  /** Percentile bootstrap interval of the mean difference, resampling problems with replacement. */
  bootstrap: Interval;
  /** The paired t-interval of the same differences, beside it. */
  t: TInterval;
}

/** The q-quantile of sorted values, interpolating linearly between order statistics (Hyndman & Fan type 7). */
function quantileSorted(sorted: readonly number[], q: number): number {
  const h = (sorted.length - 1) * q;
  const i = Math.floor(h);
  return i + 1 < sorted.length ? sorted[i] + (h - i) * (sorted[i + 1] - sorted[i]) : sorted[i];
}

/**
 * Percentile bootstrap interval of a statistic of n observations (problems): `statistic` sees a
 * resample as indices drawn with replacement, and the whole sample as 0..n-1 (the interval's mean).
 * Seeded, so the same inputs give the same interval; fewer than two observations give no bounds (one
 * problem resamples to itself every time: a zero-width interval would claim a certainty it lacks).
 */
export function bootstrapInterval(
  n: number,
  statistic: (indices: Int32Array) => number,
  { resamples = 10_000, level = 0.95, seed }: { resamples?: number; level?: number; seed: number },
): Interval {
  checkLevel(level);
  if (!(Number.isInteger(resamples) && resamples >= 1))
    throw new RangeError(`bootstrap: resamples must be a positive integer, got ${resamples}`);
  const whole = Int32Array.from({ length: n }, (_, i) => i);
  const out: Interval = { n, level, mean: statistic(whole), lo: null, hi: null };
  if (n < 2) return out;
  const rng = new Prng(seed);
  const values = new Float64Array(resamples);
  const idx = new Int32Array(n);
  for (let r = 0; r < resamples; r++) {
    for (let i = 0; i < n; i++) idx[i] = rng.int(n);
    values[r] = statistic(idx);
  }
  const sorted = Array.from(values.sort());
  out.lo = quantileSorted(sorted, (1 - level) / 2);
  out.hi = quantileSorted(sorted, (1 + level) / 2);
  return out;
}

/**
 * Paired comparison of two scores per problem (e.g. pass rates of model A and model B on the same
 * problems): the mean of d_i = b_i − a_i with a percentile bootstrap interval over problems, from
 * a Prng seeded with `seed` (the same inputs give the same interval).
 */
export function pairedBootstrap(
  a: readonly number[],
  b: readonly number[],
  { resamples = 10_000, level = 0.95, seed }: { resamples?: number; level?: number; seed: number },
): PairedBootstrap {
  checkLevel(level);
  if (!(Number.isInteger(resamples) && resamples >= 1))
    throw new RangeError(`pairedBootstrap: resamples must be a positive integer, got ${resamples}`);
  const d = differences(a, b, 'pairedBootstrap');
  const t = tInterval(d, level);
  const n = d.length;
  const bootstrap = bootstrapInterval(
    n,
    (idx) => {
      let sum = 0;
      for (const i of idx) sum += d[i];
      return sum / n;
    },
    { resamples, level, seed },
  );
  return { n, meanDiff: t.mean, resamples, seed, bootstrap, t };
}

export type Verdict = 'reproduced' | 'contradicted' | 'inconclusive';

/** The level every verdict is taken at. */
export const VERDICT_LEVEL = 0.95;

/** The verdict rule in words, for reports to print beside their verdicts. */
export const VERDICT_RULE =
  'reproduced when the 95 % interval of the effect (a t-interval over seeds, df = seeds − 1) lies entirely on the claimed side of zero; ' +
  'contradicted when it lies entirely on the other side; inconclusive otherwise, and always with fewer than 2 seeds.';

/** Applies VERDICT_RULE. direction: the side of zero the claim puts the effect on. */
export function verdict(interval: Interval, direction: 'positive' | 'negative'): Verdict {
  if (interval.level !== VERDICT_LEVEL)
    throw new RangeError(`verdict: the rule is stated at level ${VERDICT_LEVEL}, got ${interval.level}`);
  const { lo, hi } = interval;
  if (lo === null || hi === null) return 'inconclusive';
  // Negating a negative claim's interval puts its claimed side above zero; NaN bounds fail both tests.
  const [near, far] = direction === 'positive' ? [lo, hi] : [-hi, -lo];
  if (near > 0) return 'reproduced';
  if (far < 0) return 'contradicted';
  return 'inconclusive';
}

const count = (k: number, one: string) => `${k} ${one}${k === 1 ? '' : 's'}`;

/** "n = 3 seeds × 500 problems × 4 samples", leaving out the parts not given, for table captions. */
export function formatN({ seeds, problems, samples }: { seeds: number; problems?: number; samples?: number }): string {
  const parts = [count(seeds, 'seed')];
  if (problems !== undefined) parts.push(count(problems, 'problem'));
  if (samples !== undefined) parts.push(count(samples, 'sample'));
  return `n = ${parts.join(' × ')}`;
}
