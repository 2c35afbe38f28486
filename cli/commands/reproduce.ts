import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError, type Client } from '@temporalio/client';
import { loadConnection, loadStack } from '../../config/connection';
import { loadGrants } from '../../config/grants';
import { resolveConfig } from '../../config/presets';
import { stackUp } from '../../infra/stack';
import {
  campaignHandle,
  reproductionHandle,
  reproductionProgress,
  startReproduction,
  type ReproductionHandle,
} from '../../client/campaigns';
import { connectClient } from '../../infra/temporal';
import { ReproduceOptionsSchema, reproductionPlan } from '../../reproduce/plan';
import { buildReproductionReport } from '../../report/reproduction';
import { startWorkers } from '../../workers/worker';
import { campaignIdOf, type ReproduceRun } from '../../workflows/reproduce';
import { connectionOptions, overridesFrom, UsageError, type Command } from '../args';
import { follow, uiUrl } from './campaign';

const number = (flag: string, raw: string | undefined) => {
  if (raw === undefined) return undefined;
  const x = Number(raw);
  if (!Number.isFinite(x) || x <= 0) throw new UsageError(`--${flag}: expected a positive number, got "${raw}"`);
  return x;
};

export const reproduceCommands: Command[] = [
  {
    path: ['reproduce'],
    summary:
      "Reproduce T1's claims at small scale as campaigns (SFT vs RL, inference scaling, ablations) and write a markdown + HTML report",
    usage: 'reproduce [--minutes N] [--seeds 1,2] [--arms k4,no-kl,...] [--out DIR] [--id ID] [--report-only]',
    options: {
      minutes: { type: 'string' },
      seeds: { type: 'string' },
      arms: { type: 'string' },
      out: { type: 'string' },
      id: { type: 'string' },
      // Write the report from the campaigns of reproduction ID that completed, without starting anything.
      'report-only': { type: 'boolean' },
      ...connectionOptions,
    },
    async run(v) {
      const options = ReproduceOptionsSchema.parse({
        minutes: number('minutes', v.minutes),
        seeds: v.seeds?.split(',').map((s: string) => {
          if (!/^\d+$/.test(s)) throw new UsageError(`--seeds: expected comma-separated non-negative integers, got "${v.seeds}"`);
          return Number(s);
        }),
        arms: v.arms?.split(','),
      });
      const plan = reproductionPlan(resolveConfig({ preset: 'quick' }), options);
      if (v['report-only'] && !v.id) throw new UsageError('--report-only needs --id of an earlier reproduction');
      const id =
        v.id ??
        `repro-${new Date()
          .toISOString()
          .replace(/[-:TZ]/g, '')
          .slice(0, 12)}`;
      const log = (l: string) => console.error(l);
      const overrides = overridesFrom(v);
      await stackUp(loadStack(overrides), (l) => log(`[stack] ${l}`));
      const conn = loadConnection(overrides);
      const workers = await startWorkers(conn, v['report-only'] ? 'cpu' : 'all', loadGrants());
      const client = await connectClient(conn.temporal);
      const started = Date.now();
      try {
        let runs: ReproduceRun[];
        if (v['report-only']) runs = await completedRuns(client, id, plan);
        else {
          log(
            `[reproduce] ${id}: ${plan.base.length + plan.ablations.length} campaigns, ${plan.epochs} RL epochs x ${plan.stepsPerEpoch} steps each, about ${Math.round(plan.estimatedMinutes)} minutes on the reference machine; backend ${workers.backend}`,
          );
          log(`[reproduce] Temporal UI: ${uiUrl(conn, id)} (rerun with --id ${id} to reattach after an interruption)`);
          runs = await followRuns(client, await startOrAttach(client, id, plan), log);
        }
        if (!runs.some((r) => r.arm === 'base')) throw new UsageError(`reproduction ${id} has no completed base campaign yet`);
        const missing = [...plan.base, ...plan.ablations].filter((c) => !runs.some((r) => r.seed === c.seed && r.arm === c.arm));
        const seconds: Record<string, number> = {};
        for (const r of runs) {
          const d = await campaignHandle(client, r.campaignId).describe();
          seconds[r.campaignId] = ((d.closeTime ?? new Date()).getTime() - d.startTime.getTime()) / 1000;
        }
        const report = buildReproductionReport(runs, {
          command: `npx t1 reproduce${v.minutes ? ` --minutes ${v.minutes}` : ''}${v.seeds ? ` --seeds ${v.seeds}` : ''}${v.arms ? ` --arms ${v.arms}` : ''}${v.out ? ` --out ${v.out}` : ''}`,
          machine: `${cpus().length} x ${cpus()[0]?.model.trim() ?? 'unknown CPU'}, ${Math.round(totalmem() / 2 ** 30)} GiB, ${process.platform} ${process.arch}, Node ${process.versions.node}`,
          backend: workers.backend,
          generatedAt: new Date().toISOString(),
          seconds,
          missing: missing.map((c) => campaignIdOf(id, c)),
          totalSeconds: Object.values(seconds).reduce((a, b) => a + b, 0) || (Date.now() - started) / 1000,
        });
        const out = resolve(v.out ?? join('reports', id));
        mkdirSync(out, { recursive: true });
        writeFileSync(join(out, 'reproduction.md'), report.markdown);
        writeFileSync(join(out, 'reproduction.html'), report.html);
        console.log(report.markdown);
        log(`[reproduce] report: ${join(out, 'reproduction.md')} and ${join(out, 'reproduction.html')}`);
      } finally {
        await client.connection.close();
        await workers.shutdown();
      }
    },
  },
];

/** The planned campaigns of reproduction `id` that completed, in plan order. */
async function completedRuns(client: Client, id: string, plan: ReturnType<typeof reproductionPlan>): Promise<ReproduceRun[]> {
  const runs: ReproduceRun[] = [];
  for (const base of plan.base) {
    for (const c of [base, ...plan.ablations.filter((a) => a.seed === base.seed)]) {
      const campaignId = campaignIdOf(id, c);
      const handle = campaignHandle(client, campaignId);
      const status = await handle.describe().then(
        (d) => d.status.name,
        (e) => (e instanceof WorkflowNotFoundError ? 'NOT_FOUND' : Promise.reject(e)),
      );
      if (status === 'COMPLETED') runs.push({ seed: c.seed, arm: c.arm, campaignId, result: await handle.result() });
    }
  }
  return runs;
}

async function startOrAttach(client: Client, id: string, plan: ReturnType<typeof reproductionPlan>) {
  try {
    return await startReproduction(client, { id, plan });
  } catch (e) {
    if (!(e instanceof WorkflowExecutionAlreadyStartedError)) throw e;
    return reproductionHandle(client, id);
  }
}

/** Follows each child campaign in turn (progress on stderr) until the reproduction completes. */
async function followRuns(client: Client, handle: ReproductionHandle, log: (l: string) => void): Promise<ReproduceRun[]> {
  let shown = -1;
  for (;;) {
    const d = await handle.describe();
    if (d.status.name !== 'RUNNING') return handle.result();
    const p = await reproductionProgress(handle);
    if (p.done.length !== shown) {
      shown = p.done.length;
      log(`[reproduce] ${p.done.length}/${p.total} campaigns done${p.running ? `; running ${p.running}` : ''}`);
    }
    if (p.running) {
      try {
        await follow(campaignHandle(client, p.running));
      } catch {
        // the child is not started yet: poll again
      }
    }
    await new Promise((r) => setTimeout(r, 2000));
  }
}
