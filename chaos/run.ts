/**
 * `npm run chaos`: campaigns under real failures on a stack of its own. Worker processes are
 * SIGKILLed at seeded random points of synthesis, SFT, RL with rollout workers, evaluation and the
 * scaling sweep; the Temporal server is restarted mid-RL; the S3 server is stopped for 30 s
 * mid-commit; two campaigns and a schedule's run share the worker pool while kills happen. Then
 * each campaign's config runs again undisturbed, and every disturbed campaign must end with the
 * same SFT and final sha256. Last, checkpoint gc (grace 0) must leave no orphan and take nothing a
 * manifest references.
 *
 *   node --import tsx chaos/run.ts [--seed N] [--quick] [--only LABEL,…] [--json] [--keep-state]
 *
 * --quick: one short campaign and one kill (a couple of minutes, to debug the suite); --only: the
 * full suite's campaigns with these labels (chaos-pipeline, chaos-rollout, chaos-s3, chaos-shared-a,
 * chaos-shared-b, chaos-nightly); --keep-state: leave the stack's state directory (logs) behind.
 *
 * Human lines go to stdout as it goes (stderr with --json), then one JSON summary line on stdout.
 * Exit code 0 only if every check passed.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ScheduleOverlapPolicy, WorkflowFailedError, type Client } from '@temporalio/client';
import { campaignStatus, scheduledCampaignAction, startCampaign } from '../client/campaigns';
import { loadConnection, loadStack, type StackConfig } from '../config/connection';
import { resolveConfig } from '../config/presets';
import { stackDown, stackUp } from '../infra/stack';
import { connectClient } from '../infra/temporal';
import { CheckpointStore } from '../storage/checkpoints';
import { makeS3Client } from '../storage/s3';
import { Prng } from '../util/prng';
import type { CampaignResult } from '../contracts/campaign';
import { Chaos } from './chaos';
import { gcCheck, type GcCheck } from './gc-check';
import { WorkerPool } from './pool';
import { fullPlans, quickPlans, type Plan, type Running } from './scenarios';
import { finalAttempt, Missed, sleep, waitFor } from './watch';

/** Its own ports: not the developer stack's (7233, 8333) nor the test stack's (17233, 18433; SeaweedFS also binds +1..+3 and +10000). */
const PORTS = { temporal: '27233', temporalUi: '28233', s3: '21433' };
/** Connection settings of the caller's environment that would point the suite elsewhere. */
const FOREIGN = /^T1_(TEMPORAL_|S3_)/;

const { values: args } = parseArgs({
  options: {
    seed: { type: 'string' },
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    json: { type: 'boolean', default: false },
    'keep-state': { type: 'boolean', default: false },
  },
});
const seed = args.seed === undefined ? randomInt(1, 1_000_000) : Number(args.seed);
if (!Number.isSafeInteger(seed)) {
  console.error(`--seed: expected an integer, got "${args.seed}"`);
  process.exit(2);
}
const quick = args.quick!;
const only = args.only?.split(',');
const plans = quick ? quickPlans() : fullPlans().filter((p) => !only || only.includes(p.label));
if (!plans.length) {
  console.error(`--only: expected labels among ${fullPlans().map((p) => p.label)}, got "${args.only}"`);
  process.exit(2);
}
const out = (line: string) => (args.json ? process.stderr : process.stdout).write(`${line}\n`);

interface CampaignSummary {
  id: string;
  scenario: string;
  disturbances: string[];
  finalSha256?: string;
  referenceSha256?: string;
  sftSha256?: string;
  referenceSftSha256?: string;
  same: boolean;
  error?: string;
}

const unique = (label: string) => `${label}-${Date.now().toString(36)}-${randomBytes(2).toString('hex')}`;

/** A workflow's result, across Temporal restarts (a new client each time); an error once `deadline` has passed. */
async function resultOf<T>(c: Chaos, workflowId: string, deadline: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${workflowId}: no result by the suite's deadline`)), Math.max(0, deadline - Date.now()));
  });
  const result = async () => {
    for (;;) {
      try {
        return (await c.client().workflow.getHandle(workflowId).result()) as T;
      } catch (e) {
        if (e instanceof WorkflowFailedError || Date.now() > deadline) throw e;
        await sleep(2000);
      }
    }
  };
  try {
    return await Promise.race([result(), late]);
  } finally {
    clearTimeout(timer);
  }
}

async function start(c: Chaos, plan: Plan, config: ReturnType<typeof resolveConfig>, id: string, reference: boolean): Promise<Running> {
  const client: Client = c.client();
  if (!plan.schedule || reference) {
    await startCampaign(client, { campaignId: id, config, preset: 'smoke' });
    return { plan, config, id, workflowId: id, resultWorkflowId: id, disturbances: [], done: false };
  }
  // A schedule that would fire once a year, triggered now: its run starts the campaign as a child workflow.
  const schedule = await client.schedule.create({
    scheduleId: id,
    spec: { cronExpressions: ['0 3 1 1 *'] },
    action: scheduledCampaignAction({ schedule: id, config, preset: 'smoke' }),
    policies: { overlap: ScheduleOverlapPolicy.SKIP },
  });
  await schedule.trigger();
  const run = await waitFor(
    'the scheduled run',
    async () => (await schedule.describe()).info.recentActions[0]?.action.workflow.workflowId,
    60_000,
  );
  // Its first activity reads the promotion pointer from S3: the outage or a busy pool can hold it for minutes.
  const child = await waitFor(
    'the scheduled run to start its campaign',
    async () => (await c.client().workflow.getHandle(run).describe()).raw.pendingChildren?.[0]?.workflowId ?? undefined,
    300_000,
  );
  const campaignId = (await campaignStatus(c.client().workflow.getHandle(child))).campaignId;
  c.log(`schedule ${id} triggered: run ${run}, campaign ${campaignId}`);
  return { plan, config, id: campaignId, workflowId: child, resultWorkflowId: run, scheduleId: id, disturbances: [], done: false };
}

async function drive(c: Chaos, r: Running): Promise<void> {
  const rng = Prng.stream(seed, r.plan.label);
  for (const driver of r.plan.drivers) {
    try {
      r.disturbances.push(await driver(c, r, rng));
    } catch (e) {
      const what = e instanceof Missed ? e.message : `error: ${String(e)}`;
      c.missed.push({ campaign: r.id, what });
      c.log(`missed a disturbance of ${r.id}: ${what}`);
    }
  }
}

async function main(stack: StackConfig, env: NodeJS.ProcessEnv, stateDir: string): Promise<boolean> {
  const t0 = Date.now();
  out(`[chaos] seed ${seed}${quick ? ' (quick)' : ''}; stack on 127.0.0.1: Temporal ${PORTS.temporal}, S3 ${PORTS.s3}, state ${stateDir}`);
  await stackUp(stack, (l) => out(`[chaos] ${l}`));
  const conn = loadConnection({}, env);
  // Short request timeouts: the suite polls S3 while the server is down on purpose.
  const store = new CheckpointStore(conn.s3, {}, makeS3Client(conn.s3, { timeoutMs: 10_000 }));
  const pool = new WorkerPool(env, stateDir, (l) => c.log(l));
  activePool = pool;
  const c: Chaos = new Chaos(t0, conn, stack, store, pool, await connectClient(conn.temporal), out);
  c.log(`stack up`);
  const deadline = Date.now() + (quick ? 12 : 28) * 60_000;
  const summaries: CampaignSummary[] = [];
  let gc: GcCheck | undefined;
  let error: string | undefined;
  try {
    // Training, evaluation and synthesis on two workers, rollout shards on two more (quick: one of each).
    const roles = quick ? ['gpu,cpu,eval', 'rollout'] : ['gpu,cpu,eval', 'gpu,cpu,eval', 'rollout', 'rollout'];
    const workers = roles.map((r) => pool.start(r));
    await waitFor('the workers to poll', async () => workers.every((w) => w.tail.some((l) => l.includes('[worker] role'))), 180_000, 500);
    c.log('workers ready');

    // Disturbed campaigns, all at once on the one pool.
    const runs: Running[] = [];
    const drivers: Promise<void>[] = [];
    for (const plan of plans) {
      const config = resolveConfig({ preset: 'smoke', overrides: plan.overrides });
      const r = await start(c, plan, config, unique(plan.label), false);
      c.log(`started ${r.id} (${plan.scenario}${plan.schedule ? ', by a schedule' : ''})`);
      runs.push(r);
      drivers.push(drive(c, r));
    }
    const results = await Promise.all(
      runs.map(async (r) => {
        try {
          const res = await resultOf<CampaignResult>(c, r.resultWorkflowId, deadline);
          c.log(`${r.id} completed: final ${res.checkpoints.final.sha256.slice(0, 12)}`);
          return res;
        } catch (e) {
          c.log(`${r.id} did not complete: ${String(e)}`);
          return String(e);
        } finally {
          r.done = true;
        }
      }),
    );
    await Promise.all(drivers);
    for (const k of c.kills) {
      const attempt = await finalAttempt(c.client(), k).catch(() => undefined);
      k.landed = attempt !== undefined && attempt > 1;
    }
    for (const r of runs) if (r.scheduleId) await c.client().schedule.getHandle(r.scheduleId).delete();

    // The same configs undisturbed: after the chaos, so the disturbed runs' scaling sweeps were not evaluation-cache hits
    // (a schedule's run is compared with the same config started as a campaign: no promoted checkpoint, so no warm start).
    c.log('undisturbed reference runs of the same configs');
    const refIds: string[] = [];
    const refs = await Promise.all(
      runs.map(async (r) => {
        const ref = await start(c, r.plan, r.config, unique(r.plan.label.replace(/^chaos-/, 'ref-')), true);
        refIds.push(ref.id);
        try {
          const res = await resultOf<CampaignResult>(c, ref.resultWorkflowId, deadline);
          c.log(`reference ${ref.id} completed: final ${res.checkpoints.final.sha256.slice(0, 12)}`);
          return res;
        } catch (e) {
          c.log(`reference ${ref.id} did not complete: ${String(e)}`);
          return String(e);
        }
      }),
    );
    await pool.stopAll();

    runs.forEach((r, i) => {
      const res = results[i];
      const ref = refs[i];
      const got = typeof res === 'string' ? undefined : res.checkpoints;
      const want = typeof ref === 'string' ? undefined : ref.checkpoints;
      const s: CampaignSummary = {
        id: r.id,
        scenario: r.plan.scenario,
        disturbances: r.disturbances,
        finalSha256: got?.final.sha256,
        referenceSha256: want?.final.sha256,
        sftSha256: got?.sft.sha256,
        referenceSftSha256: want?.sft.sha256,
        same: !!got && !!want && got.final.sha256 === want.final.sha256 && got.sft.sha256 === want.sft.sha256,
        ...(typeof res === 'string' && { error: res }),
        ...(typeof ref === 'string' && { error: `reference: ${ref}` }),
      };
      summaries.push(s);
      c.log(
        `${r.id}: final ${s.finalSha256?.slice(0, 12)} vs reference ${s.referenceSha256?.slice(0, 12)}: ${s.same ? 'same' : 'DIFFERENT'}`,
      );
    });

    c.log('checkpoint gc (grace 0) and a dry-run second pass');
    gc = await gcCheck(conn.s3, store, [...runs.map((r) => r.id), ...refIds]);
    c.log(
      `gc removed ${gc.removed} object(s), aborted ${gc.aborted} upload(s), expired ${gc.expired} lease(s)/hold(s); ` +
        `left ${gc.orphansLeft} orphan(s); ${gc.verified} checkpoint(s) of the chaos and reference campaigns verified, ${gc.bad.length} bad`,
    );
    for (const k of gc.leftKeys.slice(0, 20)) c.log(`  left: ${k}`);
    for (const b of gc.bad) c.log(`  bad: ${b}`);
  } catch (e) {
    error = e instanceof Error ? e.message : String(e);
    c.log(`failed: ${e instanceof Error ? (e.stack ?? e.message) : error}`);
  } finally {
    await pool.stopAll();
    await c.close().catch(() => undefined);
    store.close();
  }

  for (const k of c.kills)
    if (!k.landed) c.log(`kill of worker ${k.worker} during ${k.activity} of ${k.campaign}: the activity was not retried`);
  for (const w of pool.unexpectedExits) c.log(`note: worker ${w.n} (${w.role}) exited by itself (${w.how})`);
  const ok =
    !error &&
    summaries.length > 0 &&
    summaries.every((s) => s.same) &&
    c.missed.length === 0 &&
    c.kills.every((k) => k.landed) &&
    !!gc &&
    gc.orphansLeft === 0 &&
    gc.bad.length === 0;
  const summary = {
    seed,
    quick,
    seconds: Math.round((Date.now() - t0) / 1000),
    campaigns: summaries,
    kills: c.kills.length,
    restarts: c.restarts.length,
    outages: c.outages.length,
    missed: c.missed,
    killsDetail: c.kills.map(({ at, campaign, worker, role, activity, detail, landed }) => ({
      at,
      campaign,
      worker,
      role,
      activity,
      detail,
      landed,
    })),
    restartsDetail: c.restarts,
    outagesDetail: c.outages,
    unexpectedWorkerExits: pool.unexpectedExits.length,
    gc: gc && {
      removed: gc.removed,
      aborted: gc.aborted,
      expired: gc.expired,
      orphansLeft: gc.orphansLeft,
      verified: gc.verified,
      bad: gc.bad.length,
    },
    ...(error && { error }),
    ok,
  };
  c.log(
    `${ok ? 'ok' : 'FAILED'}: ${summaries.filter((s) => s.same).length}/${summaries.length} campaigns bit-identical to their reference, ${c.kills.length} kills, ${c.restarts.length} restarts, ${c.outages.length} outages, gc orphans ${gc?.orphansLeft ?? '?'}`,
  );
  process.stdout.write(`${JSON.stringify(summary)}\n`);
  return ok;
}

const stateDir = mkdtempSync(join(tmpdir(), 't1-chaos-'));
const env: NodeJS.ProcessEnv = {
  ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !FOREIGN.test(k))),
  T1_STATE_DIR: stateDir,
  T1_TEMPORAL_PORT: PORTS.temporal,
  T1_TEMPORAL_UI_PORT: PORTS.temporalUi,
  T1_S3_PORT: PORTS.s3,
};
const stack = loadStack({}, env);
let cleaned = false;
let activePool: WorkerPool | undefined;
async function cleanup(): Promise<void> {
  if (cleaned) return;
  cleaned = true;
  await activePool?.stopAll();
  await stackDown(stack).catch((e: unknown) => out(`[chaos] stack down: ${String(e)}`));
  if (args['keep-state']) out(`[chaos] state kept in ${stateDir}`);
  else rmSync(stateDir, { recursive: true, force: true });
}
process.once('SIGINT', () => {
  out('[chaos] interrupted: stopping the stack');
  void cleanup().then(() => process.exit(130));
});
// Whatever goes wrong, the stack and the workers this suite started do not outlive it.
process.once('uncaughtException', (e) => {
  out(`[chaos] failed: ${e.stack ?? e.message}`);
  void cleanup().then(() => process.exit(1));
});

let ok = false;
try {
  ok = await main(stack, env, stateDir);
} catch (e) {
  // Before the suite got going (the stack did not come up): still one summary line.
  out(`[chaos] failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  process.stdout.write(`${JSON.stringify({ seed, quick, error: e instanceof Error ? e.message : String(e), ok: false })}\n`);
} finally {
  await cleanup();
}
process.exit(ok ? 0 : 1);
