import { describe, expect, it } from 'vitest';
import { VERDICT_RULE } from '../../../evaluation/stats';
import { buildReproductionReport, type ReproductionMeta } from '../../../report/reproduction';
import { run, scalingPoints } from './fixtures';

const meta: ReproductionMeta = {
  id: 'r',
  options: { minutes: 600, seeds: [1, 2] },
  host: { machine: '2 x test CPU', backend: 'tfjs-node' },
  missing: [],
};
const rule = `Verdict rule: ${VERDICT_RULE}`;

describe('reproduction report', () => {
  // SFT flat at 25 % at both budgets; RL rising from 12.5 % to 37.5 / 50 %: slopes 50 and 75 points per median length.
  const runs = [
    run(1, 'base', 0.2, 0.3, {
      gainK: -0.01,
      scaling: [...scalingPoints('sft', 0.25, 0.25, 0.25), ...scalingPoints('rl 100%', 0.125, 0.375, 0.375)],
    }),
    run(1, 'no-kl', 0.2, 0.28, { tokens: 150_000 }),
    run(2, 'base', 0.3, 0.45, {
      gainK: 0.02,
      scaling: [...scalingPoints('sft', 0.25, 0.25, 0.25), ...scalingPoints('rl 100%', 0.125, 0.5, 0.5)],
    }),
    run(2, 'no-kl', 0.3, 0.41, { tokens: 130_000 }),
  ];
  const { markdown, html } = buildReproductionReport(runs, meta);

  it('header: the command that ran it, how to write it again from S3, the machine and times from the stored runs', () => {
    expect(markdown).toContain(
      'Reproduction `r`, run with `npx t1 reproduce --minutes 600 --seeds 1,2 --id r`. Written from its results stored in S3 (`reproductions/r/`): ' +
        '`npx t1 reproduce --report-only --id r --out DIR` writes it again, byte for byte.',
    );
    expect(markdown).toContain(
      'Machine: 2 x test CPU; tfjs backend tfjs-node; 40 minutes of campaigns; the last finished 2026-12-02T00:00:00.000Z.',
    );
  });

  it('headline: per seed RL − SFT paired over problems with its bootstrap CI; over seeds a t-interval with df = 1 and its verdict', () => {
    // gains 0.10 and 0.15: mean 12.5, s.e. = |0.15 - 0.10| / 2 = 2.5 points; 1 df: 12.5 ± 12.706 × 2.5
    expect(markdown).toContain('RL minus SFT pass@1 over 2 seeds: **+12.5 ± 2.5 points** — inconclusive; 95 % interval -19.3 to +44.3');
    // pass@16: -1 and +2: mean 0.5, s.e. 1.5
    expect(markdown).toContain(
      'pass@16 (each at the temperature validation chose for it; RL adding capability rather than sharpening): **+0.5 ± 1.5 points** — inconclusive',
    );
    expect(markdown).toContain('| 1 | T=0.3 | 20.0 ± 1.0 | T=0.3 | 30.0 ± 1.0 | +10.0 (+8.0 to +12.0) | -1.0 (-4.0 to +2.0) | r-s1-base |');
    expect(markdown).toContain('| mean ± s.e. |  | 25.0 ± 5.0 |  | 37.5 ± 7.5 | +12.5 ± 2.5 | +0.5 ± 1.5 |  |');
  });

  it('every decoding setting: greedy and each temperature, pass@1/4/16 and maj@4/16, mean over seeds and per seed, with what validation chose', () => {
    // SFT at T=0.3 (chosen): 20 and 30 %; pass@k adds 10·log2(k)/4 points: pass@4 +5, pass@16 +10; maj@k adds log2(k) points.
    expect(markdown).toContain('| SFT | T=0.3 | 25.0 ± 5.0 | 30.0 ± 5.0 | 35.0 ± 5.0 | 27.0 ± 5.0 | 29.0 ± 5.0 | 2 of 2 | 0 of 2 |');
    expect(markdown).toContain('| RL | T=1 | 32.5 ± 7.5 | 37.5 ± 7.5 | 42.5 ± 7.5 | 34.5 ± 7.5 | 36.5 ± 7.5 | 0 of 2 | 2 of 2 |');
    // Greedy has one sample: no pass@k.
    expect(markdown).toContain('| RL | greedy | 32.5 ± 7.5 | – | – | – | – | 0 of 2 | 0 of 2 |');
    expect(markdown).toContain('| 2 | RL | T=0.3 | 45.0 ± 1.0 | 50.0 | 55.0 | 47.0 | 49.0 | pass@1 |');
    expect(markdown).toContain('| 1 | SFT | T=1 | 15.0 ± 1.0 | 20.0 | 25.0 | 17.0 | 19.0 | pass@16 |');
  });

  it('inference scaling: columns by fraction of each checkpoint median, the slope where truncation bites and RL − SFT with its verdict', () => {
    expect(markdown).toContain('| checkpoint | 50 % of median | 100 % of median | untruncated | slope | slope − SFT |');
    expect(markdown).toContain('| sft | 25.0 ± 0.0 | 25.0 ± 0.0 | 25.0 ± 0.0 | 0.0 ± 0.0 |  |');
    // slopes 50 and 75 against SFT's 0: 62.5 ± 12.5; 1 df: 62.5 ± 12.706 × 12.5
    expect(markdown).toContain('| rl 100% | 12.5 ± 0.0 | 43.8 ± 6.3 | 43.8 ± 6.3 | 62.5 ± 12.5 | 62.5 ± 12.5 |');
    expect(markdown).toContain('rl 100% − SFT slope +62.5 ± 12.5 points (inconclusive; 95 % interval -96.3 to +221.3)');
  });

  it('ablations: sampled tokens against the base, effect against the reference, and the same content as HTML', () => {
    // no-kl sampled 300 k and 260 k tokens against the base's 200 k: ×1.5 and ×1.3; effect -2 and -4 points: -3.0 ± 1.0
    expect(markdown).toContain(
      '| base |  | T1 as configured (RLOO, KL and entropy bonus, one update per batch, no refill) | 200.0 k (×1.00) |',
    );
    expect(markdown).toContain(
      '| no-kl | KL × entropy | no KL penalty (beta = 0) | 280.0 k (×1.40) | 34.5 ± 6.5 | 39.5 ± 6.5 | +9.5 ± 1.5 | -1.0 ± 0.0 | below base (T1) | -3.0 ± 1.0 | inconclusive; 95 % interval -15.7 to +9.7 | 50.0 |',
    );
    expect(html).toContain('<td>no-kl</td><td>KL × entropy</td><td>no KL penalty (beta = 0)</td>');
    expect(html).toContain('<b>+12.5 ± 2.5 points</b>');
  });

  // Three seeds: finals 30, 45 and 40 %.
  const bases = [runs[0], runs[2], run(3, 'base', 0.3, 0.4)];
  const arm = (name: string, d: number[], of = bases) => of.map((b, i) => run(b.seed, name, 0.2, b.result.results.final.accuracy + d[i]));
  const md = (...arms: ReturnType<typeof arm>[]) => buildReproductionReport([...bases, ...arms.flat()], meta).markdown;

  it('3 seeds consistently apart are reproduced or contradicted, by the side the arm claims', () => {
    // 2, 3 and 4 points: 3.0 ± 0.58, 2 df: 3.0 ± 4.303 × 0.577 = 0.5 to 5.5. k64 claims to beat the base, k4 to lose to it.
    expect(md(arm('k64', [0.02, 0.03, 0.04]))).toMatch(
      /\| k64 \| .* \| above base \(T1\) \| \+3\.0 ± 0\.6 \| reproduced; 95 % interval \+0\.5 to \+5\.5 \|/,
    );
    expect(md(arm('k64', [-0.02, -0.03, -0.04]))).toMatch(/\| k64 \| .* \| -3\.0 ± 0\.6 \| contradicted; 95 % interval -5\.5 to -0\.5 \|/);
    expect(md(arm('k4', [0.02, 0.03, 0.04]))).toMatch(/\| k4 \| .* \| below base \(T1\) \| \+3\.0 ± 0\.6 \| contradicted; /);
    expect(md(arm('k4-fixed-b', [-0.02, -0.03, -0.04]))).toMatch(/\| k4-fixed-b \| .* \| -3\.0 ± 0\.6 \| reproduced; /);
  });

  it('estimators: GRPO is compared with the base without a claim, Dr. GRPO judged against GRPO', () => {
    const grpo = arm('grpo', [-0.02, -0.03, -0.04]);
    // dr-grpo 1, 2 and 3 points above GRPO: 2.0 ± 0.58, 2 df: 2.0 ± 2.48
    const drGrpo = arm('dr-grpo', [-0.01, -0.01, -0.01]);
    const out = md(grpo, drGrpo);
    expect(out).toMatch(
      /\| grpo \| advantage estimator \| .* \| none \(no published claim against RLOO\) \| -3\.0 ± 0\.6 \| lower; 95 % interval -5\.5 to -0\.5 \|/,
    );
    expect(out).toMatch(
      /\| dr-grpo \| .* \| above grpo \(Dr\. GRPO \(Liu et al\. 2025\)\) \| \+2\.0 ± 0\.6 \| inconclusive; 95 % interval -0\.5 to \+4\.5 \|/,
    );
    expect(md(arm('grpo', [0.02, 0.03, 0.04]))).toMatch(/\| grpo \| .* \| higher; /);
    expect(md(arm('grpo', [0.01, -0.01, 0.02]))).toMatch(/\| grpo \| .* \| no clear difference; /);
  });

  it('KL × entropy: the 2 × 2 cells, both main effects judged as T1 claims them and their interaction compared', () => {
    const out = md(
      arm('no-kl', [-0.02, -0.03, -0.04]),
      arm('no-entropy', [-0.01, -0.01, -0.01]),
      arm('no-kl-no-entropy', [-0.05, -0.05, -0.05]),
    );
    // KL on − off, averaged over the bonus: 3.0, 3.5, 4.0; the bonus: 2.0, 1.5, 1.0; interaction: -2, -1, 0 (2 df, t = 4.303).
    expect(out).toContain(
      'Main effects (on − off, averaged over the other factor) over 3 seeds: KL +3.5 ± 0.3 (reproduced; 95 % interval +2.3 to +4.7); ',
    );
    expect(out).toContain('entropy bonus +1.5 ± 0.3 (reproduced; 95 % interval +0.3 to +2.7); ');
    expect(out).toContain(
      'interaction (how much more KL adds with the bonus on) -1.0 ± 0.6 (no clear difference; 95 % interval -3.5 to +1.5).',
    );
    expect(out).toContain('| KL on (beta = 0.1) | 38.3 ± 4.4 | 37.3 ± 4.4 |');
    expect(out).toContain('| KL off | 35.3 ± 4.1 | 33.3 ± 4.4 |');
  });

  it('every table states n, and every table with verdicts the rule, in markdown and HTML', () => {
    const notes = markdown.split('\n').filter((l) => l.startsWith('n = '));
    const settings = 'n = 2 seeds × 500 problems × 16 samples per setting (greedy: 1 sample, so its pass@k and maj@k are not measured)';
    expect(notes).toEqual([
      `n = 2 seeds × 500 problems × 16 samples; settings chosen on 100 validation problems × 16 samples. ${rule}`,
      settings,
      settings,
      `n = 2 seeds × 4 problems × 2 samples. ${rule}`,
      `n = 2 seeds × 500 problems × 16 samples per arm. ${rule}`,
      `n = 2 seeds × 500 problems × 16 samples per cell. ${rule}`,
      "n = 2 seeds, each seed's value the mean over that epoch's training samples",
      'n = 2 seeds; 4 campaigns',
    ]);
    expect(markdown.match(/\n\|---/g)).toHaveLength(notes.length);
    expect(html.match(/<p>n = /g)).toHaveLength(notes.length);
  });

  it('is deterministic: the same runs give the same bytes', () => {
    expect(buildReproductionReport(runs, meta)).toEqual({ markdown, html });
  });

  it('one seed: means without a spread, and no verdict but inconclusive', () => {
    const one = buildReproductionReport([runs[0], runs[1]], meta).markdown;
    expect(one).toContain('**+10.0 points** — inconclusive; one seed, no interval');
    expect(one).toContain('| mean ± s.e. |  | 20.0 |  | 30.0 | +10.0 | -1.0 |  |');
  });

  it('campaigns that did not finish: named in the header, and an arm with fewer seeds says so under its table', () => {
    const out = buildReproductionReport([...bases, runs[1], runs[3]], { ...meta, missing: ['r-s3-no-kl'] }).markdown;
    expect(out).toContain('Not finished (planned, no stored result): r-s3-no-kl; their cells average over the seeds that did.');
    expect(out).toContain('per arm; fewer where campaigns did not finish (no-kl: 2 of 3 seeds)');
  });

  it('a reproduction started without `t1 reproduce` options or a host says so instead of inventing them', () => {
    const out = buildReproductionReport(runs, { id: 'x', missing: [] }).markdown;
    expect(out).toContain('Reproduction `x`. Written from its results');
    expect(out).toContain('Machine: not recorded; 40 minutes of campaigns');
  });
});
