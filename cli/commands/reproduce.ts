import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import { loadConnection, loadStack, type S3Config } from '../../config/connection';
import { loadGrants } from '../../util/grants';
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
import { ReproduceOptionsSchema, reproductionPlan, type ReproductionPlan } from '../../reproduce/plan';
import { loadReproduction, type Host } from '../../reproduce/records';
import { buildReproductionReport } from '../../report/reproduction';
import { CheckpointStore } from '../../storage/checkpoints';
import { startWorkers } from '../../workers/worker';
import { campaignIdOf } from '../../contracts/reproduce';
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
      "Reproduce T1's claims at small scale as campaigns (SFT vs RL at each one's best setting, inference scaling, ablations), store the results in S3 and write a markdown + HTML report from them",
    usage:
      'reproduce [--minutes N] [--seeds 4,5,6] [--arms k4,no-kl,...] [--id ID] [--out DIR]\n   or: t1 reproduce --report-only --id ID [--out DIR]',
    options: {
      minutes: { type: 'string' },
      seeds: { type: 'string' },
      arms: { type: 'string' },
      out: { type: 'string' },
      id: { type: 'string' },
      // Write the report again from reproduction ID's stored results, starting nothing.
      'report-only': { type: 'boolean' },
      ...connectionOptions,
    },
    async run(v) {
      const log = (l: string) => console.error(l);
      const overrides = overridesFrom(v);
      if (v['report-only']) {
        if (!v.id) throw new UsageError('--report-only needs --id of an earlier reproduction');
        if (v.minutes || v.seeds || v.arms)
          throw new UsageError('--report-only takes the plan from the stored reproduction: drop --minutes, --seeds and --arms');
        await writeAndShow(loadConnection(overrides).s3, v.id, v.out, log);
        return;
      }
      const options = ReproduceOptionsSchema.parse({
        minutes: number('minutes', v.minutes),
        seeds: v.seeds?.split(',').map((s: string) => {
          if (!/^\d+$/.test(s)) throw new UsageError(`--seeds: expected comma-separated non-negative integers, got "${v.seeds}"`);
          return Number(s);
        }),
        arms: v.arms?.split(','),
      });
      const plan = reproductionPlan(resolveConfig({ preset: 'quick' }), options);
      const id =
        v.id ??
        `repro-${new Date()
          .toISOString()
          .replace(/[-:TZ]/g, '')
          .slice(0, 12)}`;
      await stackUp(loadStack(overrides), (l) => log(`[stack] ${l}`));
      const conn = loadConnection(overrides);
      const workers = await startWorkers(conn, 'all', loadGrants());
      const client = await connectClient(conn.temporal);
      try {
        log(
          `[reproduce] ${id}: ${plan.base.length + plan.ablations.length} campaigns, ${plan.epochs} RL epochs x ${plan.stepsPerEpoch} steps each, about ${Math.round(plan.estimatedMinutes)} minutes on the reference machine; backend ${workers.backend}`,
        );
        log(`[reproduce] Temporal UI: ${uiUrl(conn, id)} (rerun with --id ${id} to reattach after an interruption)`);
        const host: Host = {
          machine: `${cpus().length} x ${cpus()[0]?.model.trim() ?? 'unknown CPU'}, ${Math.round(totalmem() / 2 ** 30)} GiB, ${process.platform} ${process.arch}, Node ${process.versions.node}`,
          backend: workers.backend,
        };
        await followRuns(client, await startOrAttach(client, id, plan, host), log);
      } finally {
        await client.connection.close();
        await workers.shutdown();
      }
      // The run's report is the one --report-only writes: both read the stored results.
      await writeAndShow(conn.s3, id, v.out, log);
    },
  },
];

/**
 * Writes OUT/reproduction.md and .html (default reports/ID) from reproduction `id`'s results stored
 * in S3; returns their paths. What the run wrote and --report-only writes are the same bytes.
 */
export async function writeReproductionReport(s3: S3Config, id: string, outDir?: string): Promise<{ markdown: string; files: string[] }> {
  const store = new CheckpointStore(s3);
  try {
    const { record, runs, missing } = await loadReproduction(store, id);
    if (!runs.some((r) => r.arm === 'base')) throw new UsageError(`reproduction ${id} has no finished base campaign yet`);
    const report = buildReproductionReport(runs, {
      id,
      options: record.plan.options,
      host: record.host,
      missing: missing.map((c) => campaignIdOf(id, c)),
    });
    const out = resolve(outDir ?? join('reports', id));
    mkdirSync(out, { recursive: true });
    const files = [join(out, 'reproduction.md'), join(out, 'reproduction.html')];
    writeFileSync(files[0], report.markdown);
    writeFileSync(files[1], report.html);
    return { markdown: report.markdown, files };
  } finally {
    store.close();
  }
}

async function writeAndShow(s3: S3Config, id: string, outDir: string | undefined, log: (l: string) => void): Promise<void> {
  const { markdown, files } = await writeReproductionReport(s3, id, outDir);
  console.log(markdown);
  log(`[reproduce] report: ${files.join(' and ')}`);
}

async function startOrAttach(client: Client, id: string, plan: ReproductionPlan, host: Host) {
  try {
    return await startReproduction(client, { id, plan, host });
  } catch (e) {
    if (!(e instanceof WorkflowExecutionAlreadyStartedError)) throw e;
    return reproductionHandle(client, id);
  }
}

/** Follows each child campaign in turn (progress on stderr) until the reproduction completes. */
async function followRuns(client: Client, handle: ReproductionHandle, log: (l: string) => void): Promise<void> {
  let shown = -1;
  for (;;) {
    const d = await handle.describe();
    if (d.status.name !== 'RUNNING') {
      await handle.result(); // throws the failure of a reproduction that did not complete
      return;
    }
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
