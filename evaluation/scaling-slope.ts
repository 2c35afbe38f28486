/**
 * The inference-scaling claim as a slope, not a level: how much pass@1 rises per median reasoning
 * length of extra budget, fitted by least squares over the budgets where truncation bites (at most
 * the checkpoint's median reasoning length, so most of its samples are cut), with a bootstrap
 * interval over problems. RL against SFT is paired: both slopes are refitted on the same resampled
 * problems. A checkpoint whose level is higher everywhere but whose curve is flat has slope 0.
 * Pure: reports and the reproduction compute it from the stored points.
 */
import { bootstrapInterval, type Interval } from './stats';

/** What a slope needs of a scaling point (contracts/campaign ScalingPoint). */
export interface SlopePoint {
  label: string;
  budget: number;
  untruncated: boolean;
  medianReasoning?: number;
  correct?: number[];
  samples?: number;
}

export interface ScalingSlope {
  label: string;
  /** The budgets fitted, as fractions of the checkpoint's median reasoning length. */
  fractions: number[];
  /** pass@1 per median reasoning length of budget (0.1 = +10 points from 0 to the median). */
  slope: Interval;
  /** This slope minus SFT's, paired over problems (absent for SFT itself). */
  vsSft?: Interval;
}

const RESAMPLES = 4000;

/** Least-squares slope of y on x. */
export function olsSlope(x: readonly number[], y: readonly number[]): number {
  const n = x.length;
  const mx = x.reduce((a, b) => a + b, 0) / n;
  const my = y.reduce((a, b) => a + b, 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (let i = 0; i < n; i++) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) ** 2;
  }
  return sxy / sxx;
}

interface Curve {
  label: string;
  fractions: number[];
  /** [point][problem]: share of the problem's samples correct. */
  rates: number[][];
}

/** A checkpoint's points where truncation bites; undefined when it has fewer than two or lacks per-problem counts. */
function curveOf(label: string, points: readonly SlopePoint[]): Curve | undefined {
  const mine = points.filter((p) => p.label === label);
  const median = mine.find((p) => p.untruncated)?.medianReasoning;
  if (!median) return undefined;
  const bite = mine.filter((p) => !p.untruncated && p.budget <= median && p.correct && p.samples);
  if (bite.length < 2) return undefined;
  return {
    label,
    fractions: bite.map((p) => p.budget / median),
    rates: bite.map((p) => p.correct!.map((c) => c / p.samples!)),
  };
}

function slopeOn(c: Curve, idx: Int32Array): number {
  const means = c.rates.map((r) => {
    let s = 0;
    for (const i of idx) s += r[i];
    return s / idx.length;
  });
  return olsSlope(c.fractions, means);
}

/** Every checkpoint's slope (in the points' label order), RL's also against SFT's; checkpoints without enough points are left out. */
export function scalingSlopes(points: readonly SlopePoint[], seed: number): ScalingSlope[] {
  const labels = [...new Set(points.map((p) => p.label))];
  const curves = labels.map((l) => curveOf(l, points)).filter((c): c is Curve => c !== undefined);
  const sft = curves.find((c) => c.label === 'sft');
  return curves.map((c) => {
    const n = c.rates[0].length;
    const opts = { resamples: RESAMPLES, seed };
    const out: ScalingSlope = { label: c.label, fractions: c.fractions, slope: bootstrapInterval(n, (idx) => slopeOn(c, idx), opts) };
    if (sft && c !== sft && sft.rates[0].length === n) out.vsSft = bootstrapInterval(n, (idx) => slopeOn(c, idx) - slopeOn(sft, idx), opts);
    return out;
  });
}
