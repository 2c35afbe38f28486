/**
 * The chaos suite's campaigns and what disturbs each. Every campaign is the smoke preset grown just
 * enough that its stages take seconds (as tests/integration/crash.test.ts does), with its own seed,
 * so no two share checkpoints or evaluation-cache entries. The seeded PRNG picks each moment: which
 * step of SFT or RL, how long after an activity was seen started, which evaluation, which point.
 */
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import type { CampaignConfig } from '../config/campaign';
import { LEASES_PREFIX } from '../storage/checkpoints';
import { Prng } from '../util/prng';
import type { Chaos } from './chaos';
import { heldActivities, runningRollouts, sleep, waitFor, type Held } from './watch';

/** A campaign on its way: the ids to watch, what was done to it so far. */
export interface Running {
  plan: Plan;
  config: CampaignConfig;
  /** Campaign id: the prefix of its checkpoints. */
  id: string;
  /** The campaign workflow (the child of the scheduled workflow for a schedule's run). */
  workflowId: string;
  /** The workflow whose result carries the campaign's checkpoints. */
  resultWorkflowId: string;
  disturbances: string[];
  done: boolean;
}

/** One disturbance: returns what it did, or throws Missed when its moment passed. */
export type Driver = (c: Chaos, r: Running, rng: Prng) => Promise<string>;

export interface Plan {
  scenario: string;
  label: string;
  overrides: Record<string, unknown>;
  /** Started by triggering a retraining schedule instead of directly. */
  schedule?: boolean;
  /** Run one after the other while the campaign runs. */
  drivers: Driver[];
}

export class Missed extends Error {}

/** Big enough that a step takes a noticeable time, small enough for 2 cores (crash.test.ts's sizes). */
const BASE = {
  model: { contextLength: 160, dModel: 64, nLayers: 2, nHeads: 2, dFF: 128 },
  // Enough traces that synthesis runs for a moment; the builtin teacher writes thousands a second.
  data: { sftExamples: 3000 },
  sft: { steps: 120, batchSize: 16 },
  // Flat groups are kept, so every RL step changes the weights (the smoke model solves next to nothing).
  rl: { epochs: 2, stepsPerEpoch: 10, promptsPerStep: 2, samplesPerPrompt: 4, maxNewTokens: 64, dropZeroVariance: false },
  checkpoints: { sftEvery: 5, rlEvery: 2 },
};

const with_ = (seed: number, more: Record<string, unknown> = {}) => ({
  ...BASE,
  seed,
  ...more,
  rl: { ...BASE.rl, ...((more.rl as object) ?? {}) },
});

const pad = (n: number, width: number) => String(n).padStart(width, '0');
const FAST = 25;

/** Waits for `what` unless the campaign finishes first (then the moment has passed). */
function until<T>(r: Running, what: string, f: () => Promise<T | undefined | false>, everyMs: number, timeoutMs = 15 * 60_000): Promise<T> {
  return waitFor(
    what,
    async () => {
      const v = await f();
      if (v) return v;
      if (r.done) throw new Missed(`${what}: the campaign finished first`);
      return undefined;
    },
    timeoutMs,
    everyMs,
  ).catch((e: unknown) => {
    throw e instanceof Missed || r.done ? new Missed(`${what}: the campaign finished first`) : e;
  });
}

const exists = (c: Chaos, id: string) => c.store.manifest(id).then((m) => !!m);

/** The highest committed intra-checkpoint step of a run (`sft`, `rl-e0001`), while its result is not committed yet. */
async function intraStep(c: Chaos, campaignId: string, run: string): Promise<number | undefined> {
  const ids = await c.store.ids(`${campaignId}/${run}-s`);
  if (!ids.length || (await exists(c, `${campaignId}/${run}`))) return undefined;
  return Number(ids.at(-1)!.slice(-6));
}

/** A multiple of `every` in [every, total - every]: an intra checkpoint with steps after it. */
function pickStep(rng: Prng, every: number, total: number): number {
  const n = Math.max(1, Math.floor((total - 1) / every) - 1);
  return every * (1 + rng.int(n));
}

/** Kill -9 the worker training `run` (sftTrain or rlEpoch) once its intra checkpoint at a random step is committed. */
function killTraining(kind: 'sft' | 'rl', epoch = 1): Driver {
  return async (c, r, rng) => {
    const cfg = r.config;
    const every = kind === 'sft' ? cfg.checkpoints.sftEvery : cfg.checkpoints.rlEvery;
    const total = kind === 'sft' ? cfg.sft.steps : cfg.rl.stepsPerEpoch;
    const run = kind === 'sft' ? 'sft' : `rl-e${pad(epoch, 4)}`;
    const activity = kind === 'sft' ? 'sftTrain' : 'rlEpoch';
    const step = pickStep(rng, every, total);
    const extraMs = rng.int(1500);
    await until(r, `${run} past step ${step}`, async () => ((await intraStep(c, r.id, run)) ?? -1) >= step, 200);
    await sleep(extraMs);
    const held = await until(r, `${activity} running`, () => c.holding(r.workflowId, [activity]), FAST);
    const where = kind === 'sft' ? `step ${step}+/${total}` : `epoch ${epoch}, step ${step}+/${total}`;
    const detail = `${where}: ${(extraMs / 1000).toFixed(1)} s after checkpoint ${run}-s${pad(step, 6)}`;
    if (!(await c.killHolder(r.id, held, detail, true))) throw new Missed(`${activity} ended before the kill`);
    return `kill -9 during ${activity} (${where})`;
  };
}

/** Kill -9 the worker of a short activity a few ms after it is seen started (frozen first, so the kill lands inside it). */
function killShort(activity: string, gate: (c: Chaos, r: Running) => Promise<boolean>, gateWhat: string, maxDelayMs: number, skip = 0): Driver {
  return async (c, r, rng) => {
    await until(r, gateWhat, () => gate(c, r), 300);
    const toSkip = rng.int(skip + 1);
    const seen = new Set<string>();
    for (;;) {
      const held = await until(r, `${activity} started`, () => c.holding(r.workflowId, [activity]), FAST);
      if (seen.has(held.activityId) || seen.size < toSkip) {
        seen.add(held.activityId);
        await sleep(FAST);
        continue;
      }
      const delay = rng.int(maxDelayMs + 1);
      await sleep(delay);
      const which = toSkip ? `the ${ordinal(seen.size + 1)} one seen, ` : '';
      if (await c.killHolder(r.id, held, `${which}${delay} ms after it was seen started, attempt ${held.attempt}`, true))
        return `kill -9 during ${activity}`;
      seen.add(held.activityId); // it finished first: take the next one
    }
  };
}

const ordinal = (n: number) => `${n}${n === 1 ? 'st' : n === 2 ? 'nd' : n === 3 ? 'rd' : 'th'}`;

/** Kill -9 a rollout worker while it holds one of the campaign's shards (frozen first, as the rollout test does). */
const killRolloutShard: Driver = async (c, r, rng) => {
  await until(r, 'RL to start', () => exists(c, `${r.id}/sft`), 300);
  const skipSteps = rng.int(3);
  let seen = 0;
  const startedAt = new Set<string>();
  for (;;) {
    const held = await until(
      r,
      'a shard held by a rollout worker',
      async () => {
        for (const wf of await runningRollouts(c.client(), r.id)) {
          if (!startedAt.has(wf)) {
            startedAt.add(wf);
            seen++;
          }
          if (seen <= skipSteps) continue;
          const h: Held | undefined = (await heldActivities(c.client(), wf)).find(
            (a) => a.type === 'rolloutShard' && c.pool.byPid(a.pid)?.role === 'rollout',
          );
          if (h) return h;
        }
        return undefined;
      },
      50,
    );
    const step = held.workflowId.slice(`${r.id}-rollouts-`.length, `${r.id}-rollouts-`.length + 8);
    if (await c.killHolder(r.id, held, `shard ${held.activityId} of rollout workflow …-rollouts-${step}…`, true))
      return 'kill -9 of a rollout worker holding a shard during rlEpoch';
  }
};

/** Restart the Temporal server during RL epoch `epoch`, once its intra checkpoint at a random step is committed. */
function restartTemporalInRl(epoch: number): Driver {
  return async (c, r, rng) => {
    const run = `rl-e${pad(epoch, 4)}`;
    const step = pickStep(rng, r.config.checkpoints.rlEvery, r.config.rl.stepsPerEpoch);
    await until(r, `${run} past step ${step}`, async () => ((await intraStep(c, r.id, run)) ?? -1) >= step, 200);
    const downMs = 2000 + rng.int(4000);
    await c.restartTemporal(r.id, downMs, `mid-RL: epoch ${epoch}, after checkpoint ${run}-s${pad(step, 6)}`);
    return `Temporal server restarted mid-RL (epoch ${epoch}, step ${step}+, down ${(downMs / 1000).toFixed(1)} s)`;
  };
}

/** Stop the S3 server for 30 s while a checkpoint of the campaign is being committed (its lease is there). */
function s3OutageMidCommit(downMs: number): Driver {
  return async (c, r, rng) => {
    const cfg = r.config;
    const step = pickStep(rng, cfg.checkpoints.sftEvery, cfg.sft.steps);
    await until(r, `sft past step ${step}`, async () => ((await intraStep(c, r.id, 'sft')) ?? -1) >= step, 200);
    // A lease exists from before a commit's first object until after its manifest.
    const lease = await until(
      r,
      'a commit in flight',
      async () => {
        const l = await c.store.client.send(new ListObjectsV2Command({ Bucket: c.store.bucket, Prefix: `${LEASES_PREFIX}/${r.id}/` }));
        return l.Contents?.[0]?.Key;
      },
      10,
      120_000,
    );
    const name = lease.slice(`${LEASES_PREFIX}/${r.id}/`.length, -'.json'.length);
    await c.s3Outage(r.id, downMs, `mid-commit of ${r.id}/${name}`);
    return `S3 server stopped for ${Math.round(downMs / 1000)} s mid-commit (${name})`;
  };
}

/** The full suite. */
export function fullPlans(): Plan[] {
  const rlDone = (c: Chaos, r: Running) => exists(c, `${r.id}/rl-e${pad(r.config.rl.epochs, 4)}`);
  const sftDone = (c: Chaos, r: Running) => exists(c, `${r.id}/sft`);
  return [
    {
      scenario: 'pipeline',
      label: 'chaos-pipeline',
      overrides: with_(11),
      drivers: [
        killShort('synthesize', async () => true, 'the campaign to start', 60),
        killTraining('sft'),
        killShort('evaluate', sftDone, 'SFT to finish', 800),
        killShort('scalingPoint', rlDone, 'RL to finish', 300, 2),
      ],
    },
    {
      scenario: 'rl-rollout-workers',
      label: 'chaos-rollout',
      // Shards of one prompt: a step is 2 shards, one per rollout worker.
      overrides: with_(12, { rl: { sampleBatch: 4, rollout: { mode: 'workers', shardPrompts: 1 } } }),
      drivers: [killTraining('rl', 1), killRolloutShard, restartTemporalInRl(2)],
    },
    {
      scenario: 's3-outage',
      label: 'chaos-s3',
      overrides: with_(13),
      drivers: [s3OutageMidCommit(30_000)],
    },
    { scenario: 'shared-pool', label: 'chaos-shared-a', overrides: with_(14), drivers: [killTraining('sft')] },
    { scenario: 'shared-pool', label: 'chaos-shared-b', overrides: with_(15), drivers: [killTraining('rl', 2)] },
    {
      scenario: 'shared-pool (schedule)',
      label: 'chaos-nightly',
      overrides: with_(16),
      schedule: true,
      drivers: [killShort('evaluate', rlDone, 'RL to finish', 800)],
    },
  ];
}

/** --quick: one short campaign, one kill during SFT (a couple of minutes: for debugging the suite itself). */
export function quickPlans(): Plan[] {
  return [
    {
      scenario: 'quick',
      label: 'chaos-quick',
      overrides: { ...with_(21), data: { sftExamples: 200 }, sft: { steps: 40, batchSize: 16 }, rl: { ...BASE.rl, stepsPerEpoch: 4 } },
      drivers: [killTraining('sft')],
    },
  ];
}
