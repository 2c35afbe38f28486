/**
 * The campaign report: one self-contained HTML page (charts inline as SVG, also written as files)
 * from the campaign's result and its checkpoint manifests.
 */
import { contentDigest, type Manifest } from '../storage/manifest';
import type { CampaignResult } from '../contracts/campaign';
import { lineChart, type Series } from './svg';
import { comparisonText, scalingTable, SLOPE_HEADER, slopeRows, SWEEP_HEADER, sweepSize, sweepTableRows } from './evaluation';

export interface ReportInput {
  campaignId: string;
  workflowStatus: string;
  result: CampaignResult;
  manifests: Manifest[];
  uiUrl: string;
  /** The campaign's TensorBoard logdir (storage/tensorboard.ts), when it has logs. */
  tensorboard?: string;
  generatedAt: string;
}

export interface Report {
  html: string;
  /** Chart files: name -> SVG text. */
  charts: Record<string, string>;
}

const esc = (s: unknown) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const pct = (x: number) => (Number.isFinite(x) ? `${(100 * x).toFixed(1)}%` : '–');
const num = (x: number, d = 3) => (Number.isFinite(x) ? x.toFixed(d) : '–');

function table(head: string[], rows: unknown[][]): string {
  return `<table><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows.map((r) => `<tr>${r.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`).join('')}</tbody></table>`;
}

type RlPoint = { reward: number; accuracy: number; kl: number; entropy: number; responseLength: number; garbageRate: number };

export function buildReport(input: ReportInput): Report {
  const { result, manifests } = input;
  const charts: Record<string, string> = {};
  const sft = manifests.find((m) => m.kind === 'sft' && m.id === result.checkpoints.sft.id);
  const curve = (sft?.meta.curve as { step: number; loss: number; valLoss?: number }[] | undefined) ?? [];
  if (curve.length) {
    charts['sft-loss.svg'] = lineChart({
      title: 'SFT loss',
      xLabel: 'step',
      yLabel: 'cross-entropy (nats/token)',
      series: [
        { name: 'train', points: curve.map((p) => [p.step, p.loss]) },
        { name: 'validation', points: curve.filter((p) => p.valLoss !== undefined).map((p) => [p.step, p.valLoss!]) },
      ],
    });
  }
  // RL steps in order across epochs.
  const rlSteps: RlPoint[] = result.epochs.flatMap(
    (e) => (manifests.find((m) => m.id === e.checkpoint.id)?.meta.curve as RlPoint[] | undefined) ?? [],
  );
  if (rlSteps.length) {
    const s = (name: string, k: keyof RlPoint): Series => ({ name, points: rlSteps.map((p, i) => [i + 1, p[k]]) });
    charts['rl-reward.svg'] = lineChart({
      title: 'RL reward and accuracy (sampled)',
      xLabel: 'RL step',
      yLabel: 'per sample',
      series: [s('reward r + p', 'reward'), s('accuracy', 'accuracy'), s('garbage rate', 'garbageRate')],
    });
    charts['rl-kl.svg'] = lineChart({ title: 'KL to the anchor', xLabel: 'RL step', yLabel: 'nats per response', series: [s('KL', 'kl')] });
    charts['rl-entropy.svg'] = lineChart({
      title: 'Policy entropy',
      xLabel: 'RL step',
      yLabel: 'nats per token',
      series: [s('entropy', 'entropy')],
    });
    charts['rl-length.svg'] = lineChart({
      title: 'Response length',
      xLabel: 'RL step',
      yLabel: 'tokens',
      series: [s('length', 'responseLength')],
    });
  }
  if (result.scaling.length) {
    const labels = [...new Set(result.scaling.map((p) => p.label))];
    charts['inference-scaling.svg'] = lineChart({
      title: 'Inference scaling: accuracy vs reasoning budget',
      xLabel: 'reasoning budget (tokens; last point untruncated)',
      yLabel: 'accuracy (pass@1)',
      logX: true,
      series: labels.map((l) => ({
        name: l,
        points: result.scaling.filter((p) => p.label === l).map((p) => [p.budget, p.accuracy] as [number, number]),
      })),
    });
    const full = result.scaling.filter((p) => p.untruncated && p.steps?.length);
    if (full.length) {
      charts['steps-accuracy.svg'] = lineChart({
        title: 'Accuracy vs reasoning steps in the response',
        xLabel: 'reasoning steps (attempts + reflections)',
        yLabel: 'accuracy',
        series: full.map((p) => ({ name: p.label, points: p.steps!.map((x) => [x.steps, x.accuracy] as [number, number]) })),
      });
    }
  }
  const scaling = scalingTable(result.scaling, result.config.eval.scaling.fractions);
  const slopes = slopeRows(result.scaling, result.config.eval.seed);
  const backend = [...new Set(manifests.map((m) => m.backend).filter((b) => b !== 'none'))].join(', ');
  const refreshes = new Map(result.anchorRefreshes.map((r) => [r.epoch, r.anchor.id]));
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>t1 campaign ${esc(input.campaignId)}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f3f3f3}
td:first-child,th:first-child{text-align:left}.charts{display:flex;flex-wrap:wrap;gap:12px}pre{background:#f7f7f7;padding:1em;overflow:auto;max-height:30em}
</style></head><body>
<h1>Campaign ${esc(input.campaignId)}</h1>
<p>Status <b>${esc(input.workflowStatus)}</b> · preset ${esc(result.preset ?? 'custom')} · task ${esc(result.config.task.name)} · seed ${esc(result.config.seed)} · backend ${esc(backend || 'unknown')} ·
<a href="${esc(input.uiUrl)}">Temporal UI</a>${input.tensorboard ? ` · TensorBoard logs <code>${esc(input.tensorboard)}</code>` : ''} · generated ${esc(input.generatedAt)}</p>
<h2>Results (held-out test)</h2>
<p>pass@1: the share of correct samples averaged over problems (T1's number), with its standard error over problems; pass@k (unbiased) and maj@k (answers that are equal vote together) at the largest k. Every checkpoint is decoded greedily and at each temperature; * marks the setting chosen on the validation split, at which it is read. ${esc(sweepSize(result.evals.at(-1)!))}.</p>
${result.results.gain ? `<p><b>${esc(comparisonText('final', result.results.gain))}</b></p>\n` : ''}${table(SWEEP_HEADER, sweepTableRows(result.evals))}
${result.scaling.length ? `<h2>Inference scaling: accuracy by reasoning budget (the paper's figure, for this run)</h2>\n${table(scaling.header, scaling.rows)}` : ''}
${slopes.length ? `<p>The claim is a slope, not a level: pass@1 gained per median reasoning length of budget, fitted where truncation bites (budgets up to each checkpoint's median), with 95 % bootstrap intervals over problems; RL against SFT paired on the same problems.</p>\n${table(SLOPE_HEADER, slopes)}` : ''}
<h2>Training</h2>
<div class="charts">${Object.values(charts).join('\n')}</div>
<h2>RL epochs</h2>
${table(
  [
    'epoch',
    'reward',
    'accuracy',
    'KL',
    '|KL term|',
    'reward spread',
    'entropy',
    'entropy/pg grad',
    'garbage',
    'length',
    'zero-variance groups',
    'prompt difficulty',
    'tokens/s',
    'seconds',
    'anchor refreshed to',
  ],
  result.epochs.map((e) => [
    e.epoch,
    num(e.reward),
    pct(e.accuracy),
    num(e.kl, 4),
    num(e.klPenalty, 4),
    num(e.rewardSpread),
    num(e.entropy),
    num(e.entropyGradRatio, 4),
    pct(e.garbageRate),
    num(e.responseLength, 1),
    pct(e.zeroVarianceGroups),
    num(e.difficulty, 2),
    num(e.tokensPerS, 0),
    num(e.seconds, 1),
    refreshes.get(e.epoch) ?? '',
  ]),
)}
<h2>Configuration</h2>
${
  result.configTimeline.length
    ? table(
        ['from epoch', 'changes'],
        result.configTimeline.map((c) => [c.epoch, JSON.stringify(c.changes)]),
      )
    : '<p>No changes while running.</p>'
}
<pre>${esc(JSON.stringify(result.config, null, 2))}</pre>
<h2>Checkpoint lineage</h2>
${table(
  ['id', 'kind', 'step', 'parent', 'MB', 'content sha256', 'created'],
  manifests
    .filter((m) => m.kind !== 'partial')
    .map((m) => [
      m.id,
      m.kind,
      m.step,
      m.parent ?? '',
      (m.objects.reduce((s, o) => s + o.size, 0) / 1e6).toFixed(2),
      contentDigest(m).slice(0, 16),
      m.created,
    ]),
)}
</body></html>
`;
  return { html, charts };
}
