/**
 * The step loop of a long training activity: heartbeats every step (the heartbeat timeout then
 * spots a dead worker), commits an intra-activity checkpoint every N steps and heartbeats its id,
 * and on a retry resumes from that checkpoint instead of starting over. After a pause (the
 * workflow cancels the activity) the next execution finds the newest intra checkpoint of the same
 * run in storage. Training state includes every PRNG and data cursor, so a resumed run computes
 * exactly what an uninterrupted one would. Each step's metrics also go to the campaign's
 * TensorBoard log (storage/tensorboard.ts), written before each checkpoint so that a run resumed
 * from it never misses a step there.
 */
import { CancelledFailure } from '@temporalio/activity';
import { intraId, intraPrefix } from '../rules/checkpoints';
import type { CheckpointStore } from '../storage/checkpoints';
import { refOf, sizeOf, type CheckpointRef, type Manifest } from '../storage/manifest';
import { ScalarLog } from '../storage/tensorboard';
import { activityScope } from './scope';

export interface Resumable<S> {
  store: CheckpointStore;
  campaignId: string;
  /** Names this run within the campaign, e.g. "sft" or "rl-e3"; intra checkpoints are `<run>-s<step>`. */
  run: string;
  /** What the run starts from (its intra checkpoints name it as parent). */
  parent: CheckpointRef | null;
  configHash: string;
  backend: string;
  totalSteps: number;
  checkpointEvery: number;
  fresh(): Promise<S>;
  restore(objects: Record<string, Buffer>): Promise<S>;
  serialize(state: S): Promise<Record<string, Uint8Array>>;
  /** One step; returns metrics for the heartbeat. `step` is 0-based. */
  step(state: S, step: number): Promise<Record<string, number>>;
  /** The run's TensorBoard log: its name in the campaign's logdir, and the log's step before this run's first step. */
  tensorboard?: { run: string; stepBase: number };
}

export interface ResumeResult<S> {
  state: S;
  /** The step the run resumed at (0 = from scratch). */
  resumedFromStep: number;
}

interface Details {
  step: number;
  total: number;
  checkpoint?: string;
  progress?: Record<string, number>;
  /** Wall-clock seconds of the step just done, and the bytes of a checkpoint it committed (for the worker's metrics). */
  stepSeconds?: number;
  checkpointBytes?: number;
}

export async function runResumable<S>(r: Resumable<S>): Promise<ResumeResult<S>> {
  const ctx = activityScope();
  const resumeFrom = await findResumePoint(r, ctx.heartbeatDetails as Details | undefined);
  let state: S;
  let start = 0;
  if (resumeFrom) {
    const { objects } = await r.store.load(resumeFrom.id);
    state = await r.restore(objects);
    start = resumeFrom.step;
    ctx.log(`resuming ${r.run} from ${resumeFrom.id} at step ${start}`);
  } else {
    state = await r.fresh();
  }
  let checkpoint = resumeFrom?.id;
  ctx.heartbeat({ step: start, total: r.totalSteps, checkpoint } satisfies Details);
  const log = r.tensorboard && (await ScalarLog.open(r.store, r.campaignId, r.tensorboard.run));
  // The log is for watching: a write that fails is retried with the next one, never fails training.
  const flush = (force: boolean) =>
    log && (force || log.due) ? log.flush().catch((e: Error) => ctx.log(`TensorBoard log of ${r.run}: ${e.message}`)) : undefined;
  const commit = async (step: number) => {
    await flush(true);
    return commitIntra(r, state, step);
  };
  for (let i = start; i < r.totalSteps; i++) {
    const t0 = performance.now();
    const progress = await r.step(state, i);
    const stepSeconds = (performance.now() - t0) / 1000;
    const done = i + 1;
    log?.add(r.tensorboard!.stepBase + done, { ...progress, stepSeconds });
    let checkpointBytes: number | undefined;
    if (done % r.checkpointEvery === 0 && done < r.totalSteps) {
      const m = await commit(done);
      [checkpoint, checkpointBytes] = [m.id, sizeOf(m)];
    } else await flush(false);
    ctx.heartbeat({ step: done, total: r.totalSteps, checkpoint, progress, stepSeconds, checkpointBytes } satisfies Details);
    if (ctx.signal.aborted) {
      // Paused or cancelled: keep the work done so far, then stop at this step boundary.
      if (done < r.totalSteps && checkpoint !== intraId(r.campaignId, r.run, done)) {
        const m = await commit(done);
        [checkpoint, checkpointBytes] = [m.id, sizeOf(m)];
      } else await flush(true);
      ctx.heartbeat({ step: done, total: r.totalSteps, checkpoint, progress, checkpointBytes } satisfies Details);
      throw new CancelledFailure(`stopped at step ${done}/${r.totalSteps}; resumes from ${checkpoint}`);
    }
  }
  await flush(true);
  return { state, resumedFromStep: start };
}

async function commitIntra<S>(r: Resumable<S>, state: S, step: number): Promise<Manifest> {
  const { manifest } = await r.store.commit(
    {
      id: intraId(r.campaignId, r.run, step),
      kind: 'partial',
      step,
      parent: r.parent?.id ?? null,
      configHash: r.configHash,
      backend: r.backend,
      meta: { run: r.run },
    },
    await r.serialize(state),
  );
  return manifest;
}

/**
 * The heartbeated checkpoint of a retried attempt, else the newest intra checkpoint of this run
 * that matches its config and parent: found from the run's id prefix (one LIST), reading manifests
 * newest first only until one matches, so the cost does not grow with the campaign.
 */
async function findResumePoint<S>(r: Resumable<S>, details: Details | undefined): Promise<CheckpointRef | undefined> {
  if (details?.checkpoint) {
    const m = await r.store.manifest(details.checkpoint);
    if (m) return refOf(m);
  }
  for (const id of (await r.store.ids(intraPrefix(r.campaignId, r.run))).reverse()) {
    const m = await r.store.manifest(id);
    if (m && m.kind === 'partial' && m.configHash === r.configHash && m.parent === (r.parent?.id ?? null) && m.step < r.totalSteps)
      return refOf(m);
  }
  return undefined;
}

/**
 * Retention, once the run's result is committed: keeps the newest `keep` intra checkpoints of the
 * run (a retry after the commit resumes from them instead of starting over) and those marked keep.
 */
export function pruneIntra(store: CheckpointStore, campaignId: string, run: string, keep: number): Promise<string[]> {
  return store.retain({ prefix: intraPrefix(campaignId, run), keepLast: keep });
}
