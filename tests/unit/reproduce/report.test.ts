import { describe, expect, it } from 'vitest';
import { VERDICT_RULE } from '../../../evaluation/stats';
import { buildReproductionReport } from '../../../report/reproduction';
import type { CampaignResult } from '../../../workflows/campaign-types';
import type { ReproduceRun } from '../../../workflows/reproduce';

const evalOf = (label: string, accuracy: number) => ({
  label,
  accuracy,
  stderr: 0.01,
  greedyAccuracy: accuracy + 0.05,
  n: 500,
  samples: 4,
  temperature: 1,
});
const epoch = (e: number, length: number) => ({
  epoch: e,
  reward: 0.3,
  accuracy: 0.3,
  kl: 0.5,
  klPenalty: 0.02,
  rewardSpread: 0.2,
  entropy: 0.1,
  entropyGradRatio: 0.05,
  garbageRate: 0.01,
  responseLength: length,
});
const scaling = (label: string, low: number, full: number) => [
  { label, budget: 8, untruncated: false, accuracy: low },
  { label, budget: 156, untruncated: true, accuracy: full },
];

function run(seed: number, arm: string, sft: number, final: number, extra: Partial<CampaignResult> = {}): ReproduceRun {
  const result = {
    config: { eval: { scaling: { samples: 4, problems: 150 } } },
    results: { sft: evalOf('sft', sft), final: evalOf('final', final) },
    evals: [evalOf('sft', sft), evalOf('final', final)],
    epochs: [epoch(1, 45), epoch(2, 50)],
    scaling: [],
    ...extra,
  } as unknown as CampaignResult;
  return { seed, arm, campaignId: `r-s${seed}-${arm}`, result };
}

describe('reproduction report', () => {
  const runs = [
    run(1, 'base', 0.2, 0.3, { scaling: [...scaling('sft', 0.1, 0.2), ...scaling('rl 100%', 0.1, 0.3)] } as any),
    run(1, 'no-kl', 0.2, 0.28),
    run(2, 'base', 0.3, 0.45, { scaling: [...scaling('sft', 0.2, 0.3), ...scaling('rl 100%', 0.15, 0.45)] } as any),
    run(2, 'no-kl', 0.3, 0.41),
  ];
  const meta = {
    command: 'npx t1 reproduce --minutes 150',
    machine: '2 x test CPU',
    backend: 'tfjs-node',
    generatedAt: '2026-12-02T00:00:00Z',
    seconds: {},
    totalSeconds: 600,
  };
  const { markdown, html } = buildReproductionReport(runs, meta);
  const rule = `Verdict rule: ${VERDICT_RULE}`;

  it('SFT vs RL: per-seed rows and the gain as mean ± standard error over seeds, with a verdict on its t-interval', () => {
    // gains 0.10 and 0.15: mean 12.5, s.e. = |0.15 - 0.10| / 2 = 2.5 points; 1 df: 12.5 ± 12.706 × 2.5
    expect(markdown).toContain('**+12.5 ± 2.5 points** — inconclusive; 95 % interval -19.3 to +44.3');
    expect(markdown).toMatch(/\| 1 \| 20\.0 ± 1\.0 \| 30\.0 ± 1\.0 \| \+10\.0 \| 25\.0 \| 35\.0 \|/);
    expect(markdown).toContain('npx t1 reproduce --minutes 150');
  });

  it('inference scaling: rise from the smallest budget to untruncated, per checkpoint, compared with SFT', () => {
    // sft rises 10 and 10; rl 100% rises 20 and 30: 15 more on average, s.e. 5; 15 ± 12.706 × 5
    expect(markdown).toContain('sft +10.0 ± 0.0, rl 100% +25.0 ± 5.0');
    expect(markdown).toContain('rl 100% vs SFT: +15.0 ± 5.0 points more rise (inconclusive; 95 % interval -48.5 to +78.5)');
  });

  it('ablations: base − arm per seed (2 and 4 points: +3.0 ± 1.0), and the same content as HTML', () => {
    expect(markdown).toMatch(
      /\| no-kl \| no KL penalty \| 34\.5 ± 6\.5 \| .* \| \+3\.0 ± 1\.0 \(inconclusive; 95 % interval -9\.7 to \+15\.7\) \|/,
    );
    expect(html).toContain('<td>no-kl</td><td>no KL penalty</td>');
    expect(html).toContain('<b>+12.5 ± 2.5 points</b>');
  });

  it('every table states n, and every table with verdicts the rule, in markdown and HTML', () => {
    const notes = markdown.split('\n').filter((l) => l.startsWith('n = '));
    expect(notes).toEqual([
      `n = 2 seeds × 500 problems × 4 samples (greedy: 1 sample). ${rule}`,
      `n = 2 seeds × 150 problems × 4 samples. ${rule}`,
      `n = 2 seeds × 500 problems × 4 samples per arm (greedy: 1 sample). ${rule}`,
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
    expect(one).toMatch(/\| mean ± s\.e\. \| 20\.0 \| 30\.0 \| \+10\.0 \|/);
  });

  it('3 seeds consistently apart are reproduced or contradicted, by the side the arm claims', () => {
    // k64 has more oversampling than the base: the claim holds when it beats the base, so base − arm must be negative.
    const bases = [runs[0], runs[2], run(3, 'base', 0.3, 0.4)];
    const arm = (name: string, d: number[]) => bases.map((b, i) => run(b.seed, name, 0.2, b.result.results.final.accuracy - d[i]));
    const md = (name: string, d: number[]) => buildReproductionReport([...bases, ...arm(name, d)], meta).markdown;
    // 2, 3 and 4 points: 3.0 ± 0.58, 2 df: 3.0 ± 4.303 × 0.577 = 0.5 to 5.5
    expect(md('k64', [0.02, 0.03, 0.04])).toMatch(/\| k64 \| .* \| \+3\.0 ± 0\.6 \(contradicted; 95 % interval \+0\.5 to \+5\.5\) \|/);
    expect(md('k64', [-0.02, -0.03, -0.04])).toMatch(/\| k64 \| .* \| -3\.0 ± 0\.6 \(reproduced; 95 % interval -5\.5 to -0\.5\) \|/);
    // the same gap for k4 (less oversampling) reads the other way round
    expect(md('k4', [0.02, 0.03, 0.04])).toMatch(/\| k4 \| .* \| \+3\.0 ± 0\.6 \(reproduced; 95 % interval \+0\.5 to \+5\.5\) \|/);
    expect(md('k4', [-0.02, -0.03, -0.04])).toMatch(/\| k4 \| .* \| -3\.0 ± 0\.6 \(contradicted; 95 % interval -5\.5 to -0\.5\) \|/);
  });

  it('an arm with fewer seeds than the base says so under its table', () => {
    const bases = [runs[0], runs[2], run(3, 'base', 0.3, 0.4)];
    const md = buildReproductionReport([...bases, runs[1], runs[3]], meta).markdown;
    expect(md).toContain('per arm (greedy: 1 sample); fewer where campaigns did not complete (no-kl: 2 of 3 seeds)');
  });
});
