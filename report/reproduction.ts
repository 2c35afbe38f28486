/**
 * The reproduction report (markdown and HTML), from the stored records of a reproduction alone
 * (reproduce/records.ts): nothing in it comes from the clock or the machine that writes it, so
 * `t1 reproduce --report-only` gives the bytes the run gave. The headline is RL − SFT, each at its
 * best setting, paired over test problems per seed; then every decoding setting, the inference-scaling
 * slopes, the ablations with the tokens each sampled, and response length across RL. Claims over
 * seeds are judged by the one rule in evaluation/stats (t-interval, df = seeds − 1), printed with
 * the sample sizes under every table it applies to.
 */
import { scalingSlopes } from '../evaluation/scaling-slope';
import { formatN, mean, tInterval, verdict, VERDICT_RULE, type TInterval } from '../evaluation/stats';
import { ARMS, type Arm, type ReproduceOptions } from '../reproduce/plan';
import type { Host } from '../reproduce/records';
import type { EvalSummary, PairedDifference, SettingSummary } from '../contracts/campaign';
import type { ReproduceRun } from '../contracts/reproduce';

export interface ReproductionMeta {
  id: string;
  /** The options the reproduction was started with (absent: started without `t1 reproduce`). */
  options?: ReproduceOptions;
  host?: Host;
  /** Planned campaigns without a stored result. */
  missing: string[];
}

/** Over seeds: the t-interval has df = seeds − 1. */
const stat = (xs: readonly number[]): TInterval => tInterval(xs);
// One seed has no standard error: print the mean alone rather than a spread of zero.
const spread = (s: TInterval) => (s.se === null ? '' : ` ± ${(100 * s.se).toFixed(1)}`);
const pts = (s: TInterval) => `${(100 * s.mean).toFixed(1)}${spread(s)}`;
const signed = (s: TInterval) => `${pp(s.mean)}${spread(s)}`;
const bounds = (lo: number | null, hi: number | null, none: string) =>
  lo === null || hi === null ? none : `95 % interval ${pp(lo)} to ${pp(hi)}`;
/** The verdict on an effect claimed to lie on `side` of zero, with the interval it rests on. */
const judged = (s: TInterval, side: 'positive' | 'negative') => `${verdict(s, side)}; ${bounds(s.lo, s.hi, 'one seed, no interval')}`;
/** A comparison without a claimed side, read by the same rule as a claim that it is positive. */
const compared = (s: TInterval) => {
  const v = verdict(s, 'positive');
  return `${v === 'reproduced' ? 'higher' : v === 'contradicted' ? 'lower' : 'no clear difference'}; ${bounds(s.lo, s.hi, 'one seed, no interval')}`;
};
/** A paired difference over problems with its percentile bootstrap interval. */
const paired = (d: PairedDifference) => `${pp(d.diff)} (${d.lo === null || d.hi === null ? 'no CI' : `${pp(d.lo)} to ${pp(d.hi)}`})`;
const setting = (t: number | null) => (t === null ? 'greedy' : `T=${t}`);

type Table = { head: string[]; rows: string[][] };
type Section = { title: string; text: string; table: Table; note: string };

export interface Reproduction {
  markdown: string;
  html: string;
}

const evalOf = (r: ReproduceRun, label: 'sft' | 'final'): EvalSummary | undefined => r.result.evals.find((e) => e.label === label);
/** Tokens the campaign's RL sampled; undefined for epochs recorded before the count. */
const sampledTokens = (r: ReproduceRun) =>
  r.result.epochs.every((e) => e.sampledTokens !== undefined) ? r.result.epochs.reduce((n, e) => n + e.sampledTokens!, 0) : undefined;
const tokens = (n: number) => (n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : `${(n / 1e3).toFixed(1)} k`);
/** Final pass@1 (at the setting validation chose) minus SFT's, paired over problems; before paired records, the unpaired difference. */
const gainOf = (r: ReproduceRun) => r.result.results.gain?.passAt1.diff ?? r.result.results.final.accuracy - r.result.results.sft.accuracy;

export function buildReproductionReport(runs: readonly ReproduceRun[], meta: ReproductionMeta): Reproduction {
  const base = runs.filter((r) => r.arm === 'base');
  const seeds = base.map((r) => r.seed);
  const bySeed = (arm: string) => new Map(runs.filter((r) => r.arm === arm).map((r) => [r.seed, r]));
  const sections: Section[] = [];
  const ruled = (n: string) => `${n}. Verdict rule: ${VERDICT_RULE}`;
  const finalEval = evalOf(base[0], 'final')!;
  const testN = (extra = '') => `${formatN({ seeds: base.length, problems: finalEval.n, samples: finalEval.samples })}${extra}`;

  sections.push(headline(base, ruled, testN));
  sections.push(...settings(base));
  const scaling = scalingSection(base, ruled);
  if (scaling) sections.push(scaling);
  const ablation = ablations(runs, base, bySeed, ruled, testN);
  if (ablation) sections.push(ablation);
  const grid = klEntropy(base, bySeed, ruled, testN);
  if (grid) sections.push(grid);
  sections.push(lengths(base));
  sections.push({
    title: 'Campaigns',
    text: "Every campaign is a Temporal workflow (a child of the reproduction workflow), visible in the Temporal UI under its id; minutes are its wall time by the workflow's clock.",
    table: {
      head: ['campaign', 'seed', 'arm', 'RL steps', 'B × K per step', 'sampled tokens', 'minutes'],
      rows: runs.map((r) => {
        const t = sampledTokens(r);
        return [
          r.campaignId,
          String(r.seed),
          r.arm,
          String(r.result.epochs.reduce((n, e) => n + e.steps, 0)),
          `${r.result.config.rl.promptsPerStep} × ${r.result.config.rl.samplesPerPrompt}`,
          t === undefined ? '–' : tokens(t),
          (r.seconds / 60).toFixed(1),
        ];
      }),
    },
    note: `${formatN({ seeds: base.length })}; ${runs.length} campaigns`,
  });

  const o = meta.options;
  const finished = runs
    .map((r) => r.finishedAt)
    .sort()
    .at(-1);
  const header = [
    `Reproduction \`${meta.id}\`${o ? `, run with \`npx t1 reproduce --minutes ${o.minutes} --seeds ${o.seeds.join(',')}${o.arms ? ` --arms ${o.arms.join(',')}` : ''} --id ${meta.id}\`` : ''}. ` +
      `Written from its results stored in S3 (\`reproductions/${meta.id}/\`): \`npx t1 reproduce --report-only --id ${meta.id} --out DIR\` writes it again, byte for byte.`,
    `Machine: ${meta.host ? `${meta.host.machine}; tfjs backend ${meta.host.backend}` : 'not recorded'}; ` +
      `${(runs.reduce((s, r) => s + r.seconds, 0) / 60).toFixed(0)} minutes of campaigns; the last finished ${finished}.`,
    `Seeds ${seeds.join(', ')}; ± is the standard error over seeds (over problems in per-seed cells); intervals are 95 %: over seeds a t-interval (df = seeds − 1), within a seed a percentile bootstrap over test problems.`,
    ...(meta.missing.length
      ? [`Not finished (planned, no stored result): ${meta.missing.join(', ')}; their cells average over the seeds that did.`]
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

/** RL − SFT per seed, each at the setting its validation chose, paired over the same test problems. */
function headline(base: readonly ReproduceRun[], ruled: (n: string) => string, testN: (extra?: string) => string): Section {
  const gain = stat(base.map(gainOf));
  const kGains = base.map((r) => r.result.results.gain?.passAtK).filter((g) => g !== undefined);
  const k = kGains[0]?.k;
  const kGain = kGains.length === base.length && kGains.length ? stat(kGains.map((g) => g.diff)) : undefined;
  const sweep = evalOf(base[0], 'final')?.sweep;
  return {
    title: 'Headline: RL − SFT, each at its best setting',
    text:
      'Per seed, the SFT checkpoint and the final RL checkpoint, each at the decoding setting its validation split chose (greedy or a temperature), ' +
      'on the same test problems; RL − SFT is their paired difference with its 95 % percentile bootstrap interval over problems. ' +
      `RL minus SFT pass@1 over ${base.length} seeds: **${signed(gain)} points** — ${judged(gain, 'positive')}` +
      (kGain
        ? `. pass@${k} (each at the temperature validation chose for it; RL adding capability rather than sharpening): **${signed(kGain)} points** — ${judged(kGain, 'positive')}.`
        : '.'),
    table: {
      head: [
        'seed',
        'SFT setting',
        'SFT pass@1',
        'RL setting',
        'RL pass@1',
        'RL − SFT pass@1 (95 % CI)',
        `RL − SFT pass@${k ?? 'k'} (95 % CI)`,
        'campaign',
      ],
      rows: [
        ...base.map((r) => {
          const { sft, final, gain: g } = r.result.results;
          return [
            String(r.seed),
            setting(sft.temperature),
            pct(sft.accuracy, sft.stderr),
            setting(final.temperature),
            pct(final.accuracy, final.stderr),
            g ? paired(g.passAt1) : `${pp(final.accuracy - sft.accuracy)} (unpaired)`,
            g ? paired(g.passAtK) : '–',
            r.campaignId,
          ];
        }),
        [
          'mean ± s.e.',
          '',
          pts(stat(base.map((r) => r.result.results.sft.accuracy))),
          '',
          pts(stat(base.map((r) => r.result.results.final.accuracy))),
          signed(gain),
          kGain ? signed(kGain) : '–',
          '',
        ],
      ],
    },
    note: ruled(
      testN(sweep ? `; settings chosen on ${sweep.validationProblems} validation problems × ${sweep.validationSamples} samples` : ''),
    ),
  };
}

/** Every decoding setting of SFT and RL: mean over seeds, then per seed. */
function settings(base: readonly ReproduceRun[]): Section[] {
  const evals = base.flatMap((r) => [evalOf(r, 'sft'), evalOf(r, 'final')]);
  if (evals.some((e) => !e?.sweep)) return [];
  const first = evals[0]!.sweep!;
  // pass@k and maj@k at 4 and 16 where n allows, and at n itself.
  const ks = [...new Set([4, 16, first.samples])].filter((k) => k > 1 && k <= first.samples).sort((a, b) => a - b);
  const temps = first.test.map((s) => s.temperature);
  const head = ['setting', 'pass@1', ...ks.map((k) => `pass@${k}`), ...ks.map((k) => `maj@${k}`)];
  const at = (e: EvalSummary, t: number | null) => e.sweep!.test.find((s) => s.temperature === t);
  const value = (s: SettingSummary | undefined, f: (s: SettingSummary) => number | undefined) => (s && f(s) !== undefined ? f(s)! : NaN);
  const metrics: ((s: SettingSummary) => number | undefined)[] = [
    (s) => s.passAt1,
    ...ks.map((k) => (s: SettingSummary) => s.passAtK[String(k)]),
    ...ks.map((k) => (s: SettingSummary) => s.majAtK[String(k)]),
  ];
  const checkpoints = [
    { label: 'SFT', of: (r: ReproduceRun) => evalOf(r, 'sft')! },
    { label: 'RL', of: (r: ReproduceRun) => evalOf(r, 'final')! },
  ];
  const n = `${formatN({ seeds: base.length, problems: evals[0]!.n, samples: first.samples })} per setting (greedy: 1 sample, so its pass@k and maj@k are not measured)`;
  const chosen = (e: EvalSummary, t: number | null) =>
    [t === e.temperature ? 'pass@1' : '', t === e.sweep!.kTemperature ? `pass@${e.sweep!.k}` : ''].filter(Boolean).join(', ');
  const cell = (x: number) => (Number.isFinite(x) ? (100 * x).toFixed(1) : '–');
  return [
    {
      title: 'Every decoding setting: mean over seeds',
      text:
        'Test pass@1, unbiased pass@k and maj@k (answers voted by value) of the SFT and the final RL checkpoint at greedy decoding and each temperature, in percent. ' +
        'A lower best temperature with the same pass@k is sharpening; a higher pass@k at every setting is capability. "chosen" counts the seeds whose validation split chose the setting.',
      table: {
        head: ['checkpoint', ...head, 'chosen for pass@1', `chosen for pass@${first.k}`],
        rows: checkpoints.flatMap(({ label, of }) =>
          temps.map((t) => {
            const xs = metrics.map((f) => base.map((r) => value(at(of(r), t), f)));
            return [
              label,
              setting(t),
              ...xs.map((x) => (x.every(Number.isFinite) ? pts(stat(x)) : '–')),
              `${base.filter((r) => of(r).temperature === t).length} of ${base.length}`,
              `${base.filter((r) => of(r).sweep!.kTemperature === t).length} of ${base.length}`,
            ];
          }),
        ),
      },
      note: n,
    },
    {
      title: 'Every decoding setting, per seed',
      text: 'The same readings for each seed, pass@1 with its standard error over problems; "chosen" names what the validation split chose the setting for.',
      table: {
        head: ['seed', 'checkpoint', ...head, 'chosen'],
        rows: base.flatMap((r) =>
          checkpoints.flatMap(({ label, of }) =>
            temps.map((t) => {
              const s = at(of(r), t);
              return [
                String(r.seed),
                label,
                setting(t),
                s ? pct(s.passAt1, s.stderr) : '–',
                ...metrics.slice(1).map((f) => cell(value(s, f))),
                chosen(of(r), t),
              ];
            }),
          ),
        ),
      },
      note: n,
    },
  ];
}

/** pass@1 by reasoning budget (fractions of each checkpoint's median reasoning length), and the slope where truncation bites. */
function scalingSection(base: readonly ReproduceRun[], ruled: (n: string) => string): Section | undefined {
  const points = base.flatMap((r) => r.result.scaling);
  if (!points.length) return undefined;
  const sweep = base[0].result.config.eval.scaling;
  const labels = [...new Set(points.map((p) => p.label))];
  // Relative budgets: a column per fraction, each checkpoint cut at that share of its own median; fixed budgets (older runs): per token count.
  const relative = points.some((p) => p.medianReasoning !== undefined);
  const columns: { name: string; budget: (full: number | undefined) => number | undefined }[] = relative
    ? sweep.fractions.map((f) => ({
        name: `${Math.round(100 * f)} % of median`,
        budget: (m) => (m ? Math.max(1, Math.round(f * m)) : undefined),
      }))
    : [...new Set(points.filter((p) => !p.untruncated).map((p) => p.budget))]
        .sort((a, b) => a - b)
        .map((b) => ({ name: `${b} tok`, budget: () => b }));
  const accuracy = (r: ReproduceRun, label: string, column: (typeof columns)[0] | null) => {
    const mine = r.result.scaling.filter((p) => p.label === label);
    const full = mine.find((p) => p.untruncated);
    if (!column) return full?.accuracy ?? NaN;
    const b = column.budget(full?.medianReasoning);
    return mine.find((p) => !p.untruncated && p.budget === b)?.accuracy ?? NaN;
  };
  const cell = (xs: number[]) => (xs.every(Number.isFinite) ? pts(stat(xs)) : '–');
  // Per seed, each checkpoint's slope over the budgets where truncation bites, and RL's minus SFT's (paired over problems).
  const slopes = base.map((r) => scalingSlopes(r.result.scaling, r.result.config.eval.seed));
  const slopeOf = (label: string, f: (s: ReturnType<typeof scalingSlopes>[0]) => number | undefined) =>
    slopes.map((ss) => {
      const s = ss.find((x) => x.label === label);
      return s ? (f(s) ?? NaN) : NaN;
    });
  const rlLabels = labels.filter((l) => l !== 'sft');
  const last = rlLabels.at(-1);
  const vsSft = last ? slopeOf(last, (s) => s.vsSft?.mean) : [];
  const claim = vsSft.length && vsSft.every(Number.isFinite) ? stat(vsSft) : undefined;
  return {
    title: 'Inference scaling: pass@1 by reasoning budget',
    text:
      `Each checkpoint samples ${sweep.samples} response${sweep.samples === 1 ? '' : 's'} per problem on ${sweep.problems} test problems at T=${sweep.temperature}; a response still reasoning at the budget is cut and made to answer. ` +
      (relative
        ? "Budgets are fractions of each checkpoint's own median reasoning length, so every checkpoint is cut where it reasons. "
        : '') +
      'The slope is the least-squares rise of pass@1 per median length of budget over the budgets up to the median (where truncation bites), in points, per seed then over seeds. ' +
      "The paper's claim, that RL's pass@1 rises with budget more steeply than SFT's: " +
      (claim
        ? `${last} − SFT slope ${signed(claim)} points (${judged(claim, 'positive')}).`
        : 'not measurable here (fewer than two budgets below the median, or points without per-problem counts).'),
    table: {
      head: ['checkpoint', ...columns.map((c) => c.name), 'untruncated', 'slope', 'slope − SFT'],
      rows: labels.map((label) => [
        label,
        ...columns.map((c) => cell(base.map((r) => accuracy(r, label, c)))),
        cell(base.map((r) => accuracy(r, label, null))),
        cell(slopeOf(label, (s) => s.slope.mean)),
        label === 'sft' ? '' : cell(slopeOf(label, (s) => s.vsSft?.mean)),
      ]),
    },
    note: ruled(formatN({ seeds: base.length, problems: sweep.problems, samples: sweep.samples })),
  };
}

/** Every arm against its reference, at the base's responses per step unless the arm changes them on purpose. */
function ablations(
  runs: readonly ReproduceRun[],
  base: readonly ReproduceRun[],
  bySeed: (arm: string) => Map<number, ReproduceRun>,
  ruled: (n: string) => string,
  testN: (extra?: string) => string,
): Section | undefined {
  const arms = ARMS.filter((a) => runs.some((r) => r.arm === a.name));
  if (!arms.length) return undefined;
  const baseOf = bySeed('base');
  const finalK = (r: ReproduceRun) => {
    const e = evalOf(r, 'final');
    return e?.sweep?.test.find((s) => s.temperature === e.sweep!.kTemperature)?.passAtK[String(e.sweep.k)] ?? NaN;
  };
  const cell = (xs: number[], f: (s: TInterval) => string) => (xs.length && xs.every(Number.isFinite) ? f(stat(xs)) : '–');
  const row = (name: string, family: string, change: string, rs: ReproduceRun[], a?: Arm) => {
    const toks = rs.map(sampledTokens);
    const ratio = rs.map((r, i) => (toks[i] ?? NaN) / (sampledTokens(baseOf.get(r.seed)!) ?? NaN));
    const ref = a && bySeed(a.claim.versus);
    const diffs = a
      ? rs.filter((r) => ref!.has(r.seed)).map((r) => r.result.results.final.accuracy - ref!.get(r.seed)!.result.results.final.accuracy)
      : [];
    const effect = diffs.length ? stat(diffs) : undefined;
    return [
      name,
      family,
      change,
      ratio.every(Number.isFinite) ? `${tokens(mean(toks as number[]))} (×${mean(ratio).toFixed(2)})` : '–',
      cell(
        rs.map((r) => r.result.results.final.accuracy),
        pts,
      ),
      cell(rs.map(finalK), pts),
      cell(rs.map(gainOf), signed),
      cell(
        rs.map((r) => r.result.results.gain?.passAtK.diff ?? NaN),
        signed,
      ),
      a
        ? a.claim.side === null
          ? `none (${a.claim.source})`
          : `${a.claim.side === 'positive' ? 'above' : 'below'} ${a.claim.versus} (${a.claim.source})`
        : '',
      effect ? signed(effect) : a ? '–' : '',
      effect ? (a!.claim.side === null ? compared(effect) : judged(effect, a!.claim.side)) : '',
      mean(rs.map((r) => r.result.epochs.at(-1)!.responseLength)).toFixed(1),
    ];
  };
  // An arm whose campaigns did not all finish averages over fewer seeds than the base.
  const fewer = arms
    .map((a) => ({ name: a.name, seeds: runs.filter((r) => r.arm === a.name).length }))
    .filter((a) => a.seeds < base.length)
    .map((a) => `${a.name}: ${a.seeds} of ${base.length} seeds`);
  const k = evalOf(base[0], 'final')?.sweep?.k;
  return {
    title: 'Ablations',
    text:
      "Every arm starts RL from the same SFT model as its seed's base campaign. Arms sample the base's responses per step (B × K) for the base's steps, " +
      "except K at fixed B (K / K_base times the responses: the claim about spending more samples per prompt, at more compute) and refill, whose B is set from the base's share of informative groups " +
      "so that its refills bring it to about the base's responses. A response's length is the policy's, so sampled tokens differ where an arm changes it: " +
      "the tokens column gives each arm's sampled tokens and their ratio to its seed's base (×1.00: equal); a win at a ratio well above 1 is bought with compute. " +
      `The effect is arm − reference in final pass@1 (each at the setting its validation chose), per seed, then over seeds; the claim is the side of zero the named source puts it on. Length is the last RL epoch's mean response.` +
      (arms.length < ARMS.length
        ? ` Not in this run: ${ARMS.filter((a) => !arms.includes(a))
            .map((a) => a.name)
            .join(', ')}.`
        : ''),
    table: {
      head: [
        'arm',
        'family',
        'what changes',
        'sampled tokens (× base)',
        'final pass@1',
        `final pass@${k ?? 'k'}`,
        'RL − SFT pass@1',
        `RL − SFT pass@${k ?? 'k'}`,
        'claim',
        'effect',
        'verdict',
        'length',
      ],
      rows: [
        row('base', '', 'T1 as configured (RLOO, KL and entropy bonus, one update per batch, no refill)', [...base]),
        ...arms.map((a) =>
          row(
            a.name,
            a.family,
            a.change,
            runs.filter((r) => r.arm === a.name),
            a,
          ),
        ),
      ],
    },
    note: ruled(`${testN(' per arm')}${fewer.length ? `; fewer where campaigns did not finish (${fewer.join(', ')})` : ''}`),
  };
}

/** The KL penalty and the entropy bonus as a 2 × 2 design: cell means, main effects and their interaction per seed. */
function klEntropy(
  base: readonly ReproduceRun[],
  bySeed: (arm: string) => Map<number, ReproduceRun>,
  ruled: (n: string) => string,
  testN: (extra?: string) => string,
): Section | undefined {
  const cells = { both: bySeed('base'), noKl: bySeed('no-kl'), noEnt: bySeed('no-entropy'), neither: bySeed('no-kl-no-entropy') };
  if (!cells.noKl.size && !cells.noEnt.size && !cells.neither.size) return undefined;
  const acc = (m: Map<number, ReproduceRun>) => [...m.values()].map((r) => r.result.results.final.accuracy);
  const cell = (m: Map<number, ReproduceRun>) => (m.size ? pts(stat(acc(m))) : '–');
  const full = base.filter((r) => cells.noKl.has(r.seed) && cells.noEnt.has(r.seed) && cells.neither.has(r.seed)).map((r) => r.seed);
  const a = (m: Map<number, ReproduceRun>, s: number) => m.get(s)!.result.results.final.accuracy;
  const effects = full.length
    ? {
        kl: stat(full.map((s) => (a(cells.both, s) - a(cells.noKl, s) + a(cells.noEnt, s) - a(cells.neither, s)) / 2)),
        ent: stat(full.map((s) => (a(cells.both, s) - a(cells.noEnt, s) + a(cells.noKl, s) - a(cells.neither, s)) / 2)),
        both: stat(full.map((s) => a(cells.both, s) - a(cells.noKl, s) - a(cells.noEnt, s) + a(cells.neither, s))),
      }
    : undefined;
  const rl = base[0].result.config.rl;
  return {
    title: 'KL × entropy bonus',
    text:
      'Final pass@1 with the KL penalty and the entropy bonus each on (the base) or off. ' +
      (effects
        ? `Main effects (on − off, averaged over the other factor) over ${full.length} seeds: KL ${signed(effects.kl)} (${judged(effects.kl, 'positive')}); ` +
          `entropy bonus ${signed(effects.ent)} (${judged(effects.ent, 'positive')}); interaction (how much more KL adds with the bonus on) ${signed(effects.both)} (${compared(effects.both)}).`
        : 'Effects need all four cells of a seed; no seed has them yet.'),
    table: {
      head: ['', `entropy bonus on (alpha = ${rl.alphaEnt})`, 'entropy bonus off'],
      rows: [
        [`KL on (beta = ${rl.betaKl})`, cell(cells.both), cell(cells.noEnt)],
        ['KL off', cell(cells.noKl), cell(cells.neither)],
      ],
    },
    note: ruled(testN(' per cell')),
  };
}

function lengths(base: readonly ReproduceRun[]): Section {
  const epochs = Math.min(...base.map((r) => r.result.epochs.length));
  return {
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
  };
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
