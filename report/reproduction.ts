/**
 * The reproduction report (markdown and HTML) from the reproduce workflow's runs: SFT vs RL
 * pass@1, the inference-scaling table, the ablations and response length across RL, each as a
 * mean over seeds with its standard error, and a verdict on each claim by the one rule in
 * evaluation/stats, printed with the sample sizes under every table it applies to.
 */
import { formatN, mean, tInterval, verdict, VERDICT_RULE, type TInterval } from '../evaluation/stats';
import { ARMS } from '../reproduce/plan';
import type { ReproduceRun } from '../workflows/reproduce';

export interface ReproductionMeta {
  command: string;
  machine: string;
  backend: string;
  generatedAt: string;
  /** Wall-clock seconds of each campaign, by campaign id. */
  seconds: Record<string, number>;
  /** Planned campaigns that did not complete (a report written with --report-only). */
  missing?: string[];
  totalSeconds: number;
}

/** Over seeds: the t-interval has df = seeds − 1. */
const stat = (xs: readonly number[]): TInterval => tInterval(xs);
// One seed has no standard error: print the mean alone rather than a spread of zero.
const spread = (s: TInterval) => (s.se === null ? '' : ` ± ${(100 * s.se).toFixed(1)}`);
const pts = (s: TInterval) => `${(100 * s.mean).toFixed(1)}${spread(s)}`;
const signed = (s: TInterval) => `${pp(s.mean)}${spread(s)}`;
/** The verdict on an effect claimed to lie on `side` of zero, with the interval it rests on. */
const judged = (s: TInterval, side: 'positive' | 'negative') =>
  `${verdict(s, side)}; ${s.lo === null || s.hi === null ? 'one seed, no interval' : `95 % interval ${pp(s.lo)} to ${pp(s.hi)}`}`;

type Table = { head: string[]; rows: string[][] };

export interface Reproduction {
  markdown: string;
  html: string;
}

export function buildReproductionReport(runs: readonly ReproduceRun[], meta: ReproductionMeta): Reproduction {
  const base = runs.filter((r) => r.arm === 'base');
  const seeds = base.map((r) => r.seed);
  const bySeed = (arm: string) => new Map(runs.filter((r) => r.arm === arm).map((r) => [r.seed, r]));
  // Each table's note: its sample sizes and, under verdicts, the rule that gave them.
  const sections: { title: string; text: string; table: Table; note: string }[] = [];
  const ruled = (n: string) => `${n}. Verdict rule: ${VERDICT_RULE}`;
  const heldOut = base[0].result.evals[0];

  // 1. SFT vs RL
  const gain = stat(base.map((r) => r.result.results.final.accuracy - r.result.results.sft.accuracy));
  sections.push({
    title: 'SFT vs RL: held-out pass@1',
    text:
      `pass@1 averaged over ${heldOut.samples} samples per problem at ${heldOut.temperature === null ? 'greedy decoding' : `temperature ${heldOut.temperature}`} on ${heldOut.n} held-out problems, in percent; ` +
      `greedy accuracy beside it. RL minus SFT over ${seeds.length} seeds: **${signed(gain)} points** — ${judged(gain, 'positive')}.`,
    table: {
      head: ['seed', 'SFT pass@1', 'RL pass@1', 'RL − SFT', 'SFT greedy', 'RL greedy', 'RL epochs', 'campaign'],
      rows: [
        ...base.map((r) => {
          const { sft, final } = r.result.results;
          return [
            String(r.seed),
            pct(sft.accuracy, sft.stderr),
            pct(final.accuracy, final.stderr),
            pp(final.accuracy - sft.accuracy),
            pct(sft.greedyAccuracy),
            pct(final.greedyAccuracy),
            String(r.result.epochs.length),
            r.campaignId,
          ];
        }),
        [
          'mean ± s.e.',
          pts(stat(base.map((r) => r.result.results.sft.accuracy))),
          pts(stat(base.map((r) => r.result.results.final.accuracy))),
          signed(gain),
          pts(stat(base.map((r) => r.result.results.sft.greedyAccuracy))),
          pts(stat(base.map((r) => r.result.results.final.greedyAccuracy))),
          '',
          '',
        ],
      ],
    },
    note: ruled(`${formatN({ seeds: base.length, problems: heldOut.n, samples: heldOut.samples })} (greedy: 1 sample)`),
  });

  // 2. Inference scaling
  const points = base.flatMap((r) => r.result.scaling);
  if (points.length) {
    const labels = [...new Set(points.map((p) => p.label))];
    const budgets = [...new Set(points.map((p) => (p.untruncated ? Infinity : p.budget)))].sort((a, b) => a - b);
    const at = (label: string, b: number) =>
      stat(
        base.map((r) => r.result.scaling.find((p) => p.label === label && (p.untruncated ? Infinity : p.budget) === b)?.accuracy ?? NaN),
      );
    // Per seed: pass@1 untruncated minus pass@1 at the smallest budget.
    const riseOf = (r: ReproduceRun, label: string) => {
      const s = r.result.scaling.filter((p) => p.label === label);
      return (s.find((p) => p.untruncated)?.accuracy ?? NaN) - (s.find((p) => !p.untruncated && p.budget === budgets[0])?.accuracy ?? NaN);
    };
    const rises = labels.map((l) => ({ label: l, rise: stat(base.map((r) => riseOf(r, l))) }));
    const sweep = base[0].result.config.eval.scaling;
    const rlLabels = labels.filter((l) => l !== 'sft');
    const steeper = rlLabels.length > 0 && rises.every((x, i) => i === 0 || x.rise.mean > rises[i - 1].rise.mean);
    const lastRl = rlLabels[rlLabels.length - 1];
    const steeperThanSft = stat(base.map((r) => riseOf(r, lastRl) - riseOf(r, 'sft')));
    sections.push({
      title: 'Inference scaling: pass@1 by reasoning budget',
      text:
        `Each checkpoint samples ${sweep.samples} responses per problem on ${sweep.problems} held-out problems; ` +
        `a response still reasoning at the budget is cut and made to answer. Rise from the smallest budget to untruncated: ` +
        rises.map((x) => `${x.label} ${signed(x.rise)}`).join(', ') +
        `. The paper's claim (SFT flat, RL rising with budget, more steeply with more RL): ${steeper ? 'the rise grows with RL training' : 'the rise does not grow monotonically with RL training'}; ` +
        `${lastRl} vs SFT: ${signed(steeperThanSft)} points more rise (${judged(steeperThanSft, 'positive')}).`,
      table: {
        head: ['checkpoint', ...budgets.map((b) => (b === Infinity ? 'untruncated' : `${b} tok`)), 'rise'],
        rows: rises.map(({ label, rise: r }) => [label, ...budgets.map((b) => pts(at(label, b))), signed(r)]),
      },
      note: ruled(formatN({ seeds: base.length, problems: sweep.problems, samples: sweep.samples })),
    });
  }

  // 3. Ablations
  const baseFinal = bySeed('base');
  const arms = ARMS.filter((a) => runs.some((r) => r.arm === a.name));
  if (arms.length) {
    const row = (name: string, claim: string, rs: ReproduceRun[], strengthens = false) => {
      const last = (r: ReproduceRun) => r.result.epochs[r.result.epochs.length - 1];
      const vsBase = stat(rs.map((r) => baseFinal.get(r.seed)!.result.results.final.accuracy - r.result.results.final.accuracy));
      return [
        name,
        claim,
        pts(stat(rs.map((r) => r.result.results.final.accuracy))),
        signed(stat(rs.map((r) => r.result.results.final.accuracy - r.result.results.sft.accuracy))),
        name === 'base' ? '' : `${signed(vsBase)} (${judged(vsBase, strengthens ? 'negative' : 'positive')})`,
        pts(stat(rs.map((r) => r.result.results.final.greedyAccuracy))),
        mean(rs.map((r) => last(r).kl)).toFixed(2),
        mean(rs.map((r) => last(r).entropy)).toFixed(3),
        pts(stat(rs.map((r) => last(r).garbageRate))),
        mean(rs.map((r) => last(r).responseLength)).toFixed(1),
      ];
    };
    const stronger = ARMS.filter((a) => a.strengthens)
      .map((a) => a.name)
      .join(', ');
    // An arm whose campaigns did not all complete averages over fewer seeds than the base.
    const fewer = arms
      .map((a) => ({ name: a.name, seeds: runs.filter((r) => r.arm === a.name).length }))
      .filter((a) => a.seeds < base.length)
      .map((a) => `${a.name}: ${a.seeds} of ${base.length} seeds`);
    sections.push({
      title: 'Ablations at equal sampling compute',
      text:
        "Every arm starts RL from the same SFT model as its seed's base campaign and samples B × K responses per step for the same number of steps. " +
        `"base − arm" is how much the T1 ingredient adds: the claim is that it is positive, or negative for an arm with more of the ingredient than the base (${stronger}). KL, entropy, garbage and length are the last RL epoch's training means.` +
        (arms.length < ARMS.length
          ? ` Not in this run: ${ARMS.filter((a) => !arms.includes(a))
              .map((a) => `${a.name} (${a.claim})`)
              .join('; ')}.`
          : ''),
      table: {
        head: ['arm', 'what changes', 'final pass@1', 'RL − SFT', 'base − arm', 'final greedy', 'KL', 'entropy', 'garbage', 'length'],
        rows: [
          row('base', 'T1 as configured', base),
          ...arms.map((a) =>
            row(
              a.name,
              a.claim,
              runs.filter((r) => r.arm === a.name),
              a.strengthens,
            ),
          ),
        ],
      },
      note: ruled(
        `${formatN({ seeds: base.length, problems: heldOut.n, samples: heldOut.samples })} per arm (greedy: 1 sample)` +
          (fewer.length ? `; fewer where campaigns did not complete (${fewer.join(', ')})` : ''),
      ),
    });
  }

  // 4. Response length across RL
  const epochs = Math.min(...base.map((r) => r.result.epochs.length));
  sections.push({
    title: 'Response length across RL (base campaigns)',
    text:
      "Mean sampled response length (tokens) per RL epoch, with the epoch's training reward and accuracy, and how much each loss term weighs: " +
      "the KL term of the shaped reward next to the task reward's spread within a group, and the entropy bonus's gradient norm over the policy gradient's.",
    table: {
      head: ['epoch', 'length', 'reward', 'sampled accuracy', 'KL', 'KL term', 'reward spread', 'entropy', 'entropy/pg grad'],
      rows: Array.from({ length: epochs }, (_, e) => {
        const es = base.map((r) => r.result.epochs[e]);
        const m = (f: (x: (typeof es)[0]) => number, d: number) => mean(es.map(f)).toFixed(d);
        return [
          String(e + 1),
          m((x) => x.responseLength, 1),
          m((x) => x.reward, 3),
          pts(stat(es.map((x) => x.accuracy))),
          m((x) => x.kl, 2),
          m((x) => x.klPenalty, 3),
          m((x) => x.rewardSpread, 3),
          m((x) => x.entropy, 3),
          m((x) => x.entropyGradRatio, 3),
        ];
      }),
    },
    note: `${formatN({ seeds: base.length })}, each seed's value the mean over that epoch's training samples`,
  });

  sections.push({
    title: 'Campaigns',
    text: 'Every campaign is a Temporal workflow (a child of the reproduction workflow), visible in the Temporal UI under its id.',
    table: {
      head: ['campaign', 'seed', 'arm', 'minutes'],
      rows: runs.map((r) => [r.campaignId, String(r.seed), r.arm, ((meta.seconds[r.campaignId] ?? NaN) / 60).toFixed(1)]),
    },
    note: `${formatN({ seeds: base.length })}; ${runs.length} campaigns`,
  });

  const header = [
    `Regenerate with \`${meta.command}\`.`,
    `Machine: ${meta.machine}; tfjs backend ${meta.backend}; ${(meta.totalSeconds / 60).toFixed(0)} minutes wall clock; generated ${meta.generatedAt}.`,
    `Seeds ${seeds.join(', ')}; ± is the standard error over seeds (over problems in per-seed cells).`,
    ...(meta.missing?.length
      ? [`Not run (planned, did not complete): ${meta.missing.join(', ')}; their cells average over the seeds that did.`]
      : []),
  ];
  const markdown = [
    '# T1 reproduction at small scale',
    '',
    ...header.map((h) => `${h}  `),
    '',
    ...sections.flatMap((s) => [`## ${s.title}`, '', s.text, '', mdTable(s.table), '', s.note, '']),
  ].join('\n');
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>t1 reproduction</title>
<style>body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;color:#222}table{border-collapse:collapse;margin:.5em 0 1.5em}th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}</style>
</head><body><h1>T1 reproduction at small scale</h1>
${header.map((h) => `<p>${inline(h)}</p>`).join('\n')}
${sections.map((s) => `<h2>${esc(s.title)}</h2>\n<p>${inline(s.text)}</p>\n${htmlTable(s.table)}\n<p>${inline(s.note)}</p>`).join('\n')}
</body></html>
`;
  return { markdown, html };
}

const pct = (x: number, se?: number) =>
  Number.isFinite(x) ? `${(100 * x).toFixed(1)}${se === undefined ? '' : ` ± ${(100 * se).toFixed(1)}`}` : '–';
const pp = (x: number) => `${x >= 0 ? '+' : ''}${(100 * x).toFixed(1)}`;
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const inline = (s: string) =>
  esc(s)
    .replace(/\*\*(.+?)\*\*/g, '<b>$1</b>')
    .replace(/`(.+?)`/g, '<code>$1</code>');
const mdTable = (t: Table) =>
  [`| ${t.head.join(' | ')} |`, `|${t.head.map(() => '---').join('|')}|`, ...t.rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
const htmlTable = (t: Table) =>
  `<table><thead><tr>${t.head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${t.rows.map((r) => `<tr>${r.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`).join('')}</tbody></table>`;
