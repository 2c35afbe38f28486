/**
 * The evaluation's words and rows, shared by the terminal table and the HTML report: each
 * checkpoint at every decoding setting, the setting validation chose, and the paired headline.
 */
import { scalingSlopes, type SlopePoint } from '../evaluation/scaling-slope';
import type { Interval } from '../evaluation/stats';
import type { Comparison, EvalSummary, PairedDifference } from '../contracts/campaign';

/** How a decoding setting reads in tables: `greedy` or `T=0.6`. */
export function settingName(temperature: number | null): string {
  return temperature === null ? 'greedy' : `T=${temperature}`;
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
const pts = (x: number) => `${x >= 0 ? '+' : '−'}${Math.abs(100 * x).toFixed(1)}`;

function interval(d: PairedDifference): string {
  const ci = d.lo === null || d.hi === null ? 'no CI' : `${Math.round(100 * d.level)}% CI ${pts(d.lo)} to ${pts(d.hi)}`;
  return `${pts(d.diff)} points (${ci})`;
}

/** The headline sentence: this checkpoint minus the one it was compared against, each at its own best setting. */
export function comparisonText(label: string, c: Comparison): string {
  const at = (d: PairedDifference) => `${c.against} ${settingName(d.settings[0])}, ${label} ${settingName(d.settings[1])}`;
  return (
    `${label} − ${c.against}, each at the setting chosen on validation, paired over ${c.problems} test problems (percentile bootstrap): ` +
    `pass@1 ${interval(c.passAt1)} [${at(c.passAt1)}]; pass@${c.passAtK.k} ${interval(c.passAtK)} [${at(c.passAtK)}]`
  );
}

export const SWEEP_HEADER = ['checkpoint', 'setting', 'val pass@1', 'pass@1', '± s.e.', 'pass@k', 'maj@k', 'garbage', 'length'];

/**
 * One row per checkpoint and setting (test split; validation pass@1 beside it), the chosen setting
 * marked `*`. pass@k and maj@k at the largest k measured. Evaluations recorded before the sweep give one row.
 */
export function sweepTableRows(evals: readonly EvalSummary[]): string[][] {
  return evals.flatMap((e) => {
    if (!e.sweep)
      return [[e.label, `T=${e.temperature}`, '', pct(e.accuracy), pct(e.stderr), '', '', pct(e.garbageRate), e.meanLength.toFixed(1)]];
    return e.sweep.test.map((s, i) => {
      const k = Object.keys(s.passAtK).at(-1)!;
      const chosen = s.temperature === e.temperature ? '*' : '';
      return [
        i === 0 ? e.label : '',
        `${settingName(s.temperature)}${chosen}`,
        pct(e.sweep!.validation[i].passAt1),
        pct(s.passAt1),
        pct(s.stderr),
        `@${k} ${pct(s.passAtK[k])}`,
        `@${k} ${pct(s.majAtK[k])}`,
        pct(s.garbageRate),
        s.meanLength.toFixed(1),
      ];
    });
  });
}

/** "500 test problems × 16 samples per temperature; settings chosen on 100 validation problems × 16". */
export function sweepSize(e: EvalSummary): string {
  if (!e.sweep) return `${e.n} test problems × ${e.samples} samples at T=${e.temperature}`;
  const s = e.sweep;
  return `${e.n} test problems × ${s.samples} samples per temperature; settings chosen on ${s.validationProblems} validation problems × ${s.validationSamples}`;
}

/** What the scaling table needs of a point (contracts/campaign ScalingPoint). */
type TablePoint = SlopePoint & { accuracy: number };

/**
 * The inference-scaling table: a row per checkpoint, a column per budget and the untruncated run
 * last. Relative budgets (points with a median reasoning length) are columns by fraction of each
 * checkpoint's median, the tokens in the cell; fixed budgets are columns by tokens.
 */
export function scalingTable(points: readonly TablePoint[], fractions: readonly number[]): { header: string[]; rows: string[][] } {
  const labels = [...new Set(points.map((p) => p.label))];
  const relative = points.some((p) => p.medianReasoning !== undefined);
  const budgets = [...new Set(points.filter((p) => !p.untruncated).map((p) => p.budget))].sort((a, b) => a - b);
  const header = [
    'checkpoint',
    ...(relative ? fractions.map((f) => `${Math.round(100 * f)}% of median`) : budgets.map((b) => `${b} tokens`)),
    'untruncated',
  ];
  const rows = labels.map((label) => {
    const mine = points.filter((p) => p.label === label);
    const full = mine.find((p) => p.untruncated);
    const cells = relative
      ? fractions.map((f) => {
          const p =
            full?.medianReasoning && mine.find((x) => !x.untruncated && x.budget === Math.max(1, Math.round(f * full.medianReasoning!)));
          return p ? `${pct(p.accuracy)} (${p.budget})` : '';
        })
      : budgets.map((b) => {
          const p = mine.find((x) => !x.untruncated && x.budget === b);
          return p ? pct(p.accuracy) : '';
        });
    return [label, ...cells, full ? `${pct(full.accuracy)}${full.medianReasoning ? ` (median ${full.medianReasoning})` : ''}` : ''];
  });
  return { header, rows };
}

export const SLOPE_HEADER = ['checkpoint', 'fractions fitted', 'slope (points per median length)', `vs SFT (paired)`];

/** The slope table (evaluation/scaling-slope): where truncation bites, with 95 % bootstrap intervals over problems. */
export function slopeRows(points: readonly SlopePoint[], seed: number): string[][] {
  const ci = (i: Interval) => `${pts(i.mean)} (${i.lo === null || i.hi === null ? 'no CI' : `${pts(i.lo)} to ${pts(i.hi)}`})`;
  return scalingSlopes(points, seed).map((s) => [
    s.label,
    s.fractions.map((f) => f.toFixed(2)).join(', '),
    ci(s.slope),
    s.vsSft ? ci(s.vsSft) : '',
  ]);
}
