import type { Client, WorkflowHandle } from '@temporalio/client';
import { WorkflowNotFoundError } from '@temporalio/client';
import { loadConnection, type ConnectionConfig } from '../../config/connection';
import { HyperparameterError, parseAssignments, type CampaignConfig } from '../../config/campaign';
import { resolveConfig } from '../../config/presets';
import { connectClient } from '../../infra/temporal';
import type { CampaignResult } from '../../contracts/campaign';
import { comparisonText, scalingTable, SLOPE_HEADER, slopeRows, SWEEP_HEADER, sweepSize, sweepTableRows } from '../../report/evaluation';
import {
  campaignHandle,
  campaignStatus,
  listCampaigns,
  pauseCampaign,
  resumeCampaign,
  setHyperparameters,
  type CampaignHandle,
} from '../../client/campaigns';
import { connectionOptions, overridesFrom, UsageError, type Command } from '../args';
import { campaignLabel, defaultCampaignId, START_OPTIONS, startArgs, startOnce } from '../campaign-start';
import { progressOf, renderStatus, type StatusView } from '../progress';
import { UserError } from '../../util/errors';

export class CampaignError extends UserError {
  override name = 'CampaignError';
}

/** Runs `fn` with a Temporal client for the flags' connection settings, closing it afterwards. */
export async function withClient<T>(v: Record<string, any>, fn: (c: Client, conn: ConnectionConfig) => Promise<T>): Promise<T> {
  const conn = loadConnection(overridesFrom(v));
  const client = await connectClient(conn.temporal);
  try {
    return await fn(client, conn);
  } finally {
    await client.connection.close();
  }
}

export function uiUrl(conn: ConnectionConfig, id: string): string {
  return `${conn.temporal.uiUrl}/namespaces/${conn.temporal.namespace}/workflows/${encodeURIComponent(id)}`;
}

/** How long status waits for the workflow's own answer before falling back to its search attributes. */
const QUERY_TIMEOUT_MS = 3000;

/**
 * Status = the workflow's own query plus the running activity's last heartbeat (live progress).
 * When no worker answers the query in time (none running, or all busy), stage, epoch and best
 * accuracy come from the search attributes instead, and `fallback` says why.
 */
export async function fetchStatus(handle: WorkflowHandle): Promise<StatusView> {
  const timeout = AbortSignal.timeout(QUERY_TIMEOUT_MS);
  // Query and describe in parallel; the abort cancels the query and the client's retries of it.
  const query = handle.client
    .withAbortSignal(timeout, () => campaignStatus(handle))
    .then(
      (status) => ({ status }),
      (error: unknown) => ({ error }),
    );
  const desc = await handle.describe();
  const view = { campaignId: handle.workflowId, workflow: desc.status.name, progress: progressOf(desc.raw.pendingActivities ?? []) };
  const answer = await query;
  if ('status' in answer) return { ...view, status: answer.status };
  const sa = desc.searchAttributes as Record<string, unknown[] | undefined>;
  const fallback = {
    stage: sa.T1Stage?.[0] as string | undefined,
    epoch: sa.T1Epoch?.[0] as number | undefined,
    bestAccuracy: sa.T1BestAccuracy?.[0] as number | undefined,
  };
  const reason = timeout.aborted
    ? `no answer within ${QUERY_TIMEOUT_MS / 1000} s`
    : answer.error instanceof Error
      ? answer.error.message
      : String(answer.error);
  return { ...view, fallback: { ...fallback, reason: `status query unanswered (${reason})` } };
}

/** Polls until the workflow closes, rendering progress on stderr when it is a terminal. */
export async function follow(handle: WorkflowHandle, opts: { quiet?: boolean } = {}): Promise<void> {
  const tty = process.stderr.isTTY;
  let last = '';
  for (;;) {
    const s = await fetchStatus(handle);
    if (s.workflow !== 'RUNNING') break;
    const line = renderStatus(s);
    if (!opts.quiet && line !== last) {
      if (tty) process.stderr.write(`\r\x1b[2K${line}`);
      else process.stderr.write(`${line}\n`);
      last = line;
    }
    await new Promise((r) => setTimeout(r, tty ? 500 : 5000));
  }
  if (tty && !opts.quiet) process.stderr.write('\r\x1b[2K');
}

function oneId(pos: string[]): string {
  if (pos.length !== 1) throw new UsageError('expected exactly one campaign ID');
  return pos[0];
}

async function handleFor(client: Client, id: string): Promise<CampaignHandle> {
  const h = campaignHandle(client, id);
  try {
    await h.describe();
  } catch (e) {
    if (e instanceof WorkflowNotFoundError) throw new CampaignError(`no campaign "${id}"`);
    throw e;
  }
  return h;
}

/** Rows as text columns: the first `left` columns left-aligned, the rest right-aligned. */
function aligned(rows: string[][], left = 1): string[] {
  const widths = rows[0].map((_, j) => Math.max(...rows.map((row) => (row[j] ?? '').length)));
  return rows.map((row) => row.map((c, j) => (j < left ? c.padEnd(widths[j]) : c.padStart(widths[j]))).join('  '));
}

export function resultTable(r: CampaignResult): string {
  const lines = [
    `held-out evaluation (${sweepSize(r.evals.at(-1)!)}; * = the setting validation chose)`,
    ...aligned([SWEEP_HEADER, ...sweepTableRows(r.evals)], 2),
  ];
  if (r.results.gain) lines.push('', comparisonText('final', r.results.gain));
  lines.push('', 'epoch  reward  accuracy  kl        entropy  garbage  length  difficulty');
  for (const e of r.epochs)
    lines.push(
      `${String(e.epoch).padStart(5)}  ${e.reward.toFixed(3)}   ${(100 * e.accuracy).toFixed(1).padStart(6)}%  ${e.kl.toExponential(2).padEnd(8)}  ${e.entropy.toFixed(3)}    ${(100 * e.garbageRate).toFixed(1).padStart(5)}%  ${e.responseLength.toFixed(1).padEnd(6)}  ${Number.isFinite(e.difficulty) ? e.difficulty.toFixed(2) : '–'}`,
    );
  if (r.scaling.length) {
    const { header, rows } = scalingTable(r.scaling, r.config.eval.scaling.fractions);
    lines.push('', 'inference scaling (pass@1 by reasoning budget)', ...aligned([header, ...rows]));
    const slopes = slopeRows(r.scaling, r.config.eval.seed);
    if (slopes.length)
      lines.push('', 'slope where truncation bites (95% bootstrap CI over problems)', ...aligned([SLOPE_HEADER, ...slopes]));
  }
  return lines.join('\n');
}

/**
 * The config with its jsonl file (if any) read, checked line by line against the config, and pinned
 * by sha256: refused before anything starts. Read here, on the user's machine, with the user's own
 * rights; the workers that run the campaign read it again only where their grants allow.
 */
export async function withTaskFile(config: CampaignConfig, conn: ConnectionConfig): Promise<CampaignConfig> {
  if (config.task.name !== 'jsonl') return config;
  // Imported here: the S3 SDK is heavy for the commands that never read a task file (status, list).
  const [{ makeS3Client }, { pinTaskFile }, { USER_ACCESS }] = await Promise.all([
    import('../../storage/s3'),
    import('../../config/task-file'),
    import('../../util/grants'),
  ]);
  const s3 = makeS3Client(conn.s3);
  try {
    return await pinTaskFile(config, USER_ACCESS, s3);
  } finally {
    s3.destroy();
  }
}

export const campaignCommands: Command[] = [
  {
    path: ['campaign', 'start'],
    summary:
      'Start a campaign workflow (workers run it: `t1 worker`); retried with the same id (or the same command the same day), it starts nothing new',
    usage: 'campaign start [--preset P | --config FILE] [--id ID] [--seed N] [--priority 1-5] [--wait] [--json]',
    options: {
      preset: { type: 'string' },
      config: { type: 'string' },
      ...START_OPTIONS,
      wait: { type: 'boolean' },
      json: { type: 'boolean' },
      ...connectionOptions,
    },
    run: (v) => {
      const args = startArgs(v);
      const preset: string | undefined = v.preset ?? (v.config ? undefined : 'quick');
      return withClient(v, async (client, conn) => {
        const config = await withTaskFile(
          resolveConfig({ preset, file: v.config, overrides: args.seed !== undefined ? { seed: args.seed } : undefined }),
          conn,
        );
        const id = args.id ?? defaultCampaignId(campaignLabel(preset, v.config), config);
        const { handle, runId, outcome, message } = await startOnce(client, { campaignId: id, config, preset }, args.priority);
        if (!v.wait) {
          console.log(v.json ? JSON.stringify({ id, runId, outcome, uiUrl: uiUrl(conn, id) }) : `${message}\n${uiUrl(conn, id)}`);
          return;
        }
        if (!v.json) console.error(`${message}  ${uiUrl(conn, id)}`);
        if (outcome !== 'completed') await follow(handle, { quiet: v.json });
        const result = await handle.result();
        console.log(v.json ? JSON.stringify(result) : `${resultTable(result)}\n\nTemporal UI: ${uiUrl(conn, id)}`);
      });
    },
  },
  {
    path: ['campaign', 'status'],
    summary: "A campaign's stage, epoch, step, latest metrics, checkpoints and anchor",
    usage: 'campaign status ID [--json]',
    options: { json: { type: 'boolean' }, ...connectionOptions },
    run: (v, pos) =>
      withClient(v, async (client) => {
        const s = await fetchStatus(await handleFor(client, oneId(pos)));
        console.log(
          v.json
            ? JSON.stringify({
                ...(s.status ?? { campaignId: s.campaignId, fallback: s.fallback }),
                workflowStatus: s.workflow,
                progress: s.progress,
              })
            : `${s.workflow}  ${renderStatus(s)}`,
        );
      }),
  },
  {
    path: ['campaign', 'list'],
    summary: 'Campaigns with their stage, epoch and best accuracy',
    usage: 'campaign list [--json]',
    options: { json: { type: 'boolean' }, ...connectionOptions },
    run: (v) =>
      withClient(v, async (client) => {
        const rows = [];
        for await (const w of listCampaigns(client)) {
          const sa = w.searchAttributes as Record<string, unknown[]>;
          rows.push({
            id: w.workflowId,
            status: w.status.name,
            started: w.startTime.toISOString(),
            stage: sa.T1Stage?.[0],
            epoch: sa.T1Epoch?.[0],
            bestAccuracy: sa.T1BestAccuracy?.[0],
            preset: sa.T1Preset?.[0],
          });
        }
        if (v.json) return void console.log(JSON.stringify(rows));
        for (const r of rows)
          console.log(
            `${r.id.padEnd(30)} ${r.status.padEnd(11)} ${String(r.stage ?? '').padEnd(13)} epoch ${String(r.epoch ?? 0).padStart(3)}  best ${r.bestAccuracy === undefined ? '   -' : `${(100 * Number(r.bestAccuracy)).toFixed(1)}%`}  ${r.preset ?? ''}`,
          );
      }),
  },
  ...(['pause', 'resume'] as const).map((sig): Command => ({
    path: ['campaign', sig],
    summary: sig === 'pause' ? 'Pause at the next step boundary (an intra-activity checkpoint is committed)' : 'Resume a paused campaign',
    usage: `campaign ${sig} ID`,
    options: connectionOptions,
    run: (v, pos) =>
      withClient(v, async (client) => {
        const h = await handleFor(client, oneId(pos));
        await (sig === 'pause' ? pauseCampaign(h) : resumeCampaign(h));
        console.log(`${sig === 'pause' ? 'pause' : 'resume'} sent to ${pos[0]}`);
      }),
  })),
  {
    path: ['campaign', 'cancel'],
    summary: 'Cancel a campaign (running activities stop at their next step)',
    usage: 'campaign cancel ID',
    options: connectionOptions,
    run: (v, pos) =>
      withClient(v, async (client) => {
        await (await handleFor(client, oneId(pos))).cancel();
        console.log(`cancel requested for ${pos[0]}`);
      }),
  },
  {
    path: ['campaign', 'set'],
    summary: 'Change RL hyper-parameters at the next epoch boundary; prints the effective config',
    usage: 'campaign set ID key=value [key=value ...] [--json]   e.g. rl.lr=1e-4 rl.temperature=1.0',
    options: { json: { type: 'boolean' }, ...connectionOptions },
    run: (v, pos) =>
      withClient(v, async (client) => {
        const [id, ...words] = pos;
        if (!id || !words.length) throw new UsageError('expected a campaign ID and at least one key=value');
        const changes = parseAssignments(words);
        const effective = await setHyperparameters(await handleFor(client, id), changes).catch((e: unknown) => {
          throw e instanceof HyperparameterError ? new CampaignError(`rejected: ${e.message}`) : e;
        });
        console.log(
          v.json
            ? JSON.stringify(effective)
            : `accepted for the next epoch; effective rl config:\n${JSON.stringify(effective.rl, null, 2)}`,
        );
      }),
  },
  {
    path: ['campaign', 'watch'],
    summary: 'Live progress of a campaign until it ends',
    usage: 'campaign watch ID',
    options: connectionOptions,
    run: (v, pos) =>
      withClient(v, async (client, conn) => {
        const h = await handleFor(client, oneId(pos));
        await follow(h);
        const d = await h.describe();
        console.log(`${pos[0]} ${d.status.name}`);
        if (d.status.name === 'COMPLETED') console.log(resultTable(await h.result()));
        console.log(`Temporal UI: ${uiUrl(conn, pos[0])}`);
      }),
  },
];
