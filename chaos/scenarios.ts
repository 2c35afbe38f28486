/**
 * The chaos suite's campaigns and what disturbs each. Every campaign is the smoke preset grown just
 * enough that its stages take seconds (as tests/integration/crash.test.ts does), with its own seed,
 * so no two share checkpoints or evaluation-cache entries. The seeded PRNG picks each moment: which
 * step of SFT or RL, how long after an activity was seen started, which evaluation, which point.
 */
import { intraId, intraPrefix, rlRun, runId, SFT_RUN } from '../rules/checkpoints';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import type { CampaignConfig } from '../config/campaign';
import { LEASES_PREFIX } from '../storage/checkpoints';
import type { Prng } from '../util/prng';
import type { Chaos } from './chaos';
import { heldActivities, Missed, runningRollouts, sleep, waitFor, type Held } from './watch';

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
  /** The schedule that started it, if one did. */
  scheduleId?: string;
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

const sized = (seed: number, more: Record<string, unknown> = {}) => ({
  ...BASE,
  seed,
  ...more,
  rl: { ...BASE.rl, ...((more.rl as object) ?? {}) },
});

const FAST = 25;

/**
 * Waits for `what` unless the campaign finishes first or `passed` (checked once a second) says its
 * moment is over: then Missed.
 */
function until<T>(
  r: Running,
  what: string,
  f: () => Promise<T | undefined | false>,
  everyMs: number,
  passed?: () => Promise<boolean>,
  timeoutMs = 15 * 60_000,
): Promise<T> {
  let nextCheck = 0;
  return waitFor(
    what,
    async () => {
      const v = await f();
      if (v) return v;
      if (r.done) throw new Missed(`${what}: the campaign finished first`);
      if (passed && Date.now() >= nextCheck) {
        nextCheck = Date.now() + 1000;
        if (await passed()) throw new Missed(`${what}: its moment passed`);
      }
      return undefined;
    },
    timeoutMs,
    everyMs,
  );
}

const exists = (c: Chaos, id: string) => c.store.manifest(id).then((m) => !!m);

/** The highest committed intra-checkpoint step of a run (`sft`, `rl-e0001`), while its result is not committed yet. */
async function intraStep(c: Chaos, campaignId: string, run: string): Promise<number | undefined> {
  const ids = await c.store.ids(intraPrefix(campaignId, run));
  if (!ids.length || (await exists(c, runId(campaignId, run)))) return undefined;
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
    const run = kind === 'sft' ? SFT_RUN : rlRun(epoch);
    const activity = kind === 'sft' ? 'sftTrain' : 'rlEpoch';
    const step = pickStep(rng, every, total);
    const extraMs = rng.int(1500);
    const over = () => exists(c, `${r.id}/${run}`);
    await until(r, `${run} past step ${step}`, async () => ((await intraStep(c, r.id, run)) ?? -1) >= step, 200, over);
    await sleep(extraMs);
    const held = await until(r, `${activity} running`, () => c.holding(r.workflowId, [activity]), FAST, over);
    const where = kind === 'sft' ? `step ${step}+/${total}` : `epoch ${epoch}, step ${step}+/${total}`;
    const detail = `${where}: ${(extraMs / 1000).toFixed(1)} s after checkpoint ${intraId(r.id, run, step)}`;
    if (!(await c.killHolder(r.id, held, detail, true))) throw new Missed(`${activity} ended before the kill`);
    return `kill -9 during ${activity} (${where})`;
  };
}

interface ShortKill {
  /** What must have happened before the activity can run (checked every 300 ms). */
  after: (c: Chaos, r: Running) => Promise<boolean>;
  afterWhat: string;
  /** Its moment is over (checked once a second). */
  over?: (c: Chaos, r: Running) => Promise<boolean>;
  /** Kill up to this long after it is seen started. */
  maxDelayMs: number;
  /** Let up to this many of its kind go by first. */
  skip?: number;
  /** Which one, for the record (e.g. "of the SFT checkpoint"). */
  which?: string;
}

/** Kill -9 the worker of a short activity a few ms after it is seen started (frozen first, so the kill lands inside it). */
function killShort(activity: string, o: ShortKill): Driver {
  return async (c, r, rng) => {
    const over = o.over && (() => o.over!(c, r));
    await until(r, o.afterWhat, () => o.after(c, r), 300, over);
    const toSkip = rng.int((o.skip ?? 0) + 1);
    const seen = new Set<string>();
    for (;;) {
      const held = await until(r, `${activity} started`, () => c.holding(r.workflowId, [activity]), FAST, over);
      if (seen.has(held.activityId) || seen.size < toSkip) {
        seen.add(held.activityId);
        await sleep(FAST);
        continue;
      }
      const delay = rng.int(o.maxDelayMs + 1);
      await sleep(delay);
      const nth = toSkip ? `the ${ordinal(seen.size + 1)} seen, ` : '';
      const which = o.which ? ` ${o.which}` : '';
      if (await c.killHolder(r.id, held, `${nth}${delay} ms after it was seen started, attempt ${held.attempt}${which}`, true))
        return `kill -9 during ${activity}${which}`;
      seen.add(held.activityId); // it finished first: take the next one
    }
  };
}

const ordinal = (n: number) => `${n}${n === 1 ? 'st' : n === 2 ? 'nd' : n === 3 ? 'rd' : 'th'}`;

/** Kill -9 a rollout worker while it holds one of the campaign's shards (frozen first, as the rollout test does). */
const killRolloutShard: Driver = async (c, r, rng) => {
  const over = () => exists(c, runId(r.id, rlRun(r.config.rl.epochs)));
  await until(r, 'RL to start', () => exists(c, `${r.id}/sft`), 300, over);
  const skipSteps = rng.int(3);
  const steps = new Set<string>();
  for (;;) {
    const held = await until(
      r,
      'a shard held by a rollout worker',
      async () => {
        for (const wf of await runningRollouts(c.client(), r.id)) {
          steps.add(wf);
          if (steps.size <= skipSteps) continue;
          const h: Held | undefined = (await heldActivities(c.client(), wf)).find(
            (a) => a.type === 'rolloutShard' && c.pool.byPid(a.pid)?.role === 'rollout',
          );
          if (h) return h;
        }
        return undefined;
      },
      50,
      over,
    );
    if (await c.killHolder(r.id, held, `shard ${held.activityId} of the ${ordinal(steps.size)} rollout step seen`, true))
      return 'kill -9 of a rollout worker holding a shard (RL with rollout workers)';
  }
};

/** Restart the Temporal server during RL epoch `epoch`, once its intra checkpoint at a random step is committed. */
function restartTemporalInRl(epoch: number): Driver {
  return async (c, r, rng) => {
    const run = rlRun(epoch);
    const step = pickStep(rng, r.config.checkpoints.rlEvery, r.config.rl.stepsPerEpoch);
    const over = () => exists(c, `${r.id}/${run}`);
    await until(r, `${run} past step ${step}`, async () => ((await intraStep(c, r.id, run)) ?? -1) >= step, 200, over);
    const downMs = 2000 + rng.int(4000);
    await c.restartTemporal(r.id, downMs, `mid-RL: epoch ${epoch}, after checkpoint ${intraId(r.id, run, step)}`);
    return `Temporal server restarted mid-RL (epoch ${epoch}, step ${step}+)`;
  };
}

/** Stop the S3 server for `downMs` while a checkpoint of the campaign is being committed (its lease is there). */
function s3OutageMidCommit(downMs: number): Driver {
  return async (c, r, rng) => {
    const cfg = r.config;
    const step = pickStep(rng, cfg.checkpoints.sftEvery, cfg.sft.steps);
    await until(
      r,
      `sft past step ${step}`,
      async () => ((await intraStep(c, r.id, 'sft')) ?? -1) >= step,
      200,
      () => exists(c, `${r.id}/sft`),
    );
    // A lease exists from before a commit's first object until after its manifest.
    const lease = await until(
      r,
      'a commit in flight',
      async () => {
        const l = await c.store.client.send(new ListObjectsV2Command({ Bucket: c.store.bucket, Prefix: `${LEASES_PREFIX}/${r.id}/` }));
        return l.Contents?.[0]?.Key;
      },
      10,
    );
    const name = lease.slice(`${LEASES_PREFIX}/${r.id}/`.length, -'.json'.length);
    await c.s3Outage(r.id, downMs, `mid-commit of ${r.id}/${name}`);
    return `S3 server stopped for ${Math.round(downMs / 1000)} s mid-commit (${name})`;
  };
}

/** The full suite. */
export function fullPlans(): Plan[] {
  const last = (r: Running) => runId(r.id, rlRun(r.config.rl.epochs));
  const rlDone = (c: Chaos, r: Running) => exists(c, last(r));
  const sftDone = (c: Chaos, r: Running) => exists(c, `${r.id}/sft`);
  const rlStarted = async (c: Chaos, r: Running) => (await c.store.ids(runId(r.id, rlRun(1)))).length > 0;
  return [
    {
      scenario: 'pipeline',
      label: 'chaos-pipeline',
      // An evaluation of 64 test problems lasts seconds, a window that a loaded machine's polls still catch.
      overrides: sized(11, { eval: { problems: 64 } }),
      drivers: [
        killShort('synthesize', {
          after: async () => true,
          afterWhat: 'the campaign to start',
          over: (c, r) => exists(c, `${r.id}/dataset`),
          maxDelayMs: 60,
          which: 'of the SFT traces',
        }),
        killTraining('sft'),
        killShort('evaluate', {
          after: sftDone,
          afterWhat: 'SFT to finish',
          over: rlStarted,
          maxDelayMs: 800,
          which: 'of the SFT checkpoint',
        }),
        killShort('scalingPoint', {
          after: rlDone,
          afterWhat: 'RL to finish',
          maxDelayMs: 300,
          skip: 2,
          which: 'of the inference-scaling sweep',
        }),
      ],
    },
    {
      scenario: 'rl-rollout-workers',
      label: 'chaos-rollout',
      // Shards of one prompt: a step is 2 shards, one per rollout worker.
      overrides: sized(12, { rl: { sampleBatch: 4, rollout: { mode: 'workers', shardPrompts: 1 } } }),
      drivers: [killTraining('rl', 1), killRolloutShard, restartTemporalInRl(2)],
    },
    {
      scenario: 's3-outage',
      label: 'chaos-s3',
      overrides: sized(13),
      drivers: [s3OutageMidCommit(30_000)],
    },
    { scenario: 'shared-pool', label: 'chaos-shared-a', overrides: sized(14), drivers: [killTraining('sft')] },
    { scenario: 'shared-pool', label: 'chaos-shared-b', overrides: sized(15), drivers: [killTraining('rl', 2)] },
    {
      scenario: 'shared-pool (schedule)',
      label: 'chaos-nightly',
      overrides: sized(16),
      schedule: true,
      drivers: [killShort('evaluate', { after: rlDone, afterWhat: 'RL to finish', maxDelayMs: 800, which: 'of the final checkpoint' })],
    },
  ];
}

/** --quick: one short campaign, one kill during SFT (about a minute: for debugging the suite itself). */
export function quickPlans(): Plan[] {
  return [
    {
      scenario: 'quick',
      label: 'chaos-quick',
      overrides: { ...sized(21), data: { sftExamples: 200 }, sft: { steps: 40, batchSize: 16 }, rl: { ...BASE.rl, stepsPerEpoch: 4 } },
      drivers: [killTraining('sft')],
    },
  ];
}
