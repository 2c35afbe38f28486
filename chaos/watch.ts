/** What the chaos suite reads from Temporal to pick its moments: running activities, their workers, their attempts. */
import type { Client } from '@temporalio/client';
import proto from '@temporalio/proto';

const { PENDING_ACTIVITY_STATE_STARTED } = proto.temporal.api.enums.v1.PendingActivityState;

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Thrown by a wait whose moment has passed (what it waited for can no longer happen): ends the wait at once. */
export class Missed extends Error {}

/**
 * Polls `f` until it returns a value. Errors count as "not yet" (the servers go down on purpose),
 * except Missed; the last one is named if the wait times out.
 */
export async function waitFor<T>(what: string, f: () => Promise<T | undefined | false>, timeoutMs: number, everyMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await f();
      if (v) return v;
    } catch (e) {
      if (e instanceof Missed) throw e;
      last = e;
    }
    if (Date.now() > deadline)
      throw new Error(
        `timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}${last ? ` (last error: ${String(last)})` : ''}`,
      );
    await sleep(everyMs);
  }
}

/** An activity a worker holds right now. */
export interface Held {
  workflowId: string;
  /** The run that holds it: a rollout step's id can run again, and a campaign continues as new. */
  runId: string;
  activityId: string;
  type: string;
  attempt: number;
  /** The worker process that started it (Temporal's default identity is `<pid>@<host>`). */
  pid: number;
  /** The last heartbeated step, when the activity reports one (heartbeats reach the server throttled). */
  step?: number;
  total?: number;
}

/** The started activities of a workflow, with the process that holds each. */
export async function heldActivities(client: Client, workflowId: string): Promise<Held[]> {
  const d = await client.workflow.getHandle(workflowId).describe();
  const out: Held[] = [];
  for (const p of d.raw.pendingActivities ?? []) {
    if (p.state !== PENDING_ACTIVITY_STATE_STARTED) continue;
    const data = p.heartbeatDetails?.payloads?.[0]?.data;
    let details: { step?: number; total?: number } = {};
    try {
      if (data) details = JSON.parse(Buffer.from(data).toString('utf8'));
    } catch {
      // not JSON: no step to show
    }
    out.push({
      workflowId,
      runId: d.runId,
      activityId: p.activityId ?? '',
      type: p.activityType?.name ?? '?',
      attempt: p.attempt ?? 1,
      pid: Number((p.lastWorkerIdentity ?? '').split('@')[0]),
      ...(typeof details.step === 'number' && { step: details.step, total: details.total }),
    });
  }
  return out;
}

/** Whether the activity is still started by the same process. */
export async function stillHeld(client: Client, h: Held): Promise<boolean> {
  return (await heldActivities(client, h.workflowId)).some((a) => a.runId === h.runId && a.activityId === h.activityId && a.pid === h.pid);
}

/** The running rollout workflows (one per RL step in workers mode) of a campaign. */
export async function runningRollouts(client: Client, campaignId: string): Promise<string[]> {
  const out: string[] = [];
  for await (const w of client.workflow.list({ query: `WorkflowType='rolloutWorkflow' AND ExecutionStatus='Running'` }))
    if (w.workflowId.startsWith(`${campaignId}-rollouts-`)) out.push(w.workflowId);
  return out;
}

/**
 * The attempt that finished an activity, from its run's history (ActivityTaskStarted is written with
 * the last attempt): above 1 when a kill cost it an attempt. Undefined if not found.
 */
export async function finalAttempt(client: Client, h: Pick<Held, 'workflowId' | 'runId' | 'activityId'>): Promise<number | undefined> {
  const history = await client.workflow.getHandle(h.workflowId, h.runId).fetchHistory();
  const events = history.events ?? [];
  const scheduled = events.find((e) => e.activityTaskScheduledEventAttributes?.activityId === h.activityId);
  if (!scheduled?.eventId) return undefined;
  const id = String(scheduled.eventId);
  const started = events.find(
    (e) => e.activityTaskStartedEventAttributes && String(e.activityTaskStartedEventAttributes.scheduledEventId) === id,
  );
  return started?.activityTaskStartedEventAttributes?.attempt ?? undefined;
}
