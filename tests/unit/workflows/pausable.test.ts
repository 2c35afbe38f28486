/**
 * workflows/pausable.ts on an ephemeral Temporal dev server, through a probe workflow
 * (pausable-probe.ts) and one stub activity: a pause cancels the running activity and resume runs
 * it again; a boundary holds while paused; a failure or a cancel of the workflow still ends it.
 */
import { fileURLToPath } from 'node:url';
import { Context } from '@temporalio/activity';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { ActivityFailure, ApplicationFailure, CancelledFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, DefaultLogger, type WorkflowBundle } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { devServer, stubWorker } from './dev-server';
import { pausableProbe, pauseProbe, resumeProbe, type ProbeActivities } from './pausable-probe';

const taskQueue = 'pausable-probe';
let env: TestWorkflowEnvironment;
let bundle: WorkflowBundle;
beforeAll(async () => {
  [env, bundle] = await Promise.all([
    devServer(),
    bundleWorkflowCode({
      workflowsPath: fileURLToPath(new URL('./pausable-probe.ts', import.meta.url)),
      logger: new DefaultLogger('WARN'),
    }),
  ]);
}, 120_000);
afterAll(() => env?.teardown());

/** What the stub activity does: finish at once, hold (heartbeating) until cancelled or opened, or fail. */
let gate: 'open' | 'held' | 'fail';
/** What the activity did, in order: `start N`, `cancelled N`. */
let events: string[];

const activities: ProbeActivities = {
  async work() {
    const ctx = Context.current();
    const attempt = events.filter((e) => e.startsWith('start')).length + 1;
    events.push(`start ${attempt}`);
    if (gate === 'fail') throw ApplicationFailure.nonRetryable('the activity broke', 'ProbeError');
    while (gate === 'held') {
      ctx.heartbeat();
      await Promise.race([ctx.sleep(50), ctx.cancelled]).catch((e: unknown) => {
        events.push(`cancelled ${attempt}`);
        throw e;
      });
    }
    return attempt;
  },
};

/** Runs `body` with a fresh probe (started with a pause signal when `paused`) while a worker serves it. */
async function withProbe<T>(opts: { gate: typeof gate; paused?: boolean }, body: (h: Probe) => Promise<T>) {
  gate = opts.gate;
  events = [];
  const worker = await stubWorker(env, { taskQueue, workflowBundle: bundle, activities });
  return worker.runUntil(start(opts.paused ?? false).then(body));
}

type Probe = WorkflowHandle<typeof pausableProbe>;

let n = 0;
function start(paused: boolean) {
  const options = { taskQueue, workflowId: `probe-${Date.now().toString(36)}-${n++}` };
  return paused
    ? env.client.workflow.signalWithStart(pausableProbe, { ...options, signal: pauseProbe })
    : env.client.workflow.start(pausableProbe, options);
}

const seen = (event: string) => vi.waitFor(() => expect(events).toContain(event), { timeout: 15_000, interval: 25 });

/** Pauses the probe once its first attempt runs, and waits until that attempt has been cancelled. */
async function pauseFirstAttempt(h: Probe): Promise<void> {
  await seen('start 1');
  await h.signal(pauseProbe);
  await seen('cancelled 1');
}

describe('pausable', () => {
  it('runs the activity once when nothing pauses it', async () => {
    expect(await withProbe({ gate: 'open' }, (h) => h.result())).toBe(1);
    expect(events).toEqual(['start 1']);
  });

  it('a pause cancels the running activity and waits; resume runs it again', async () => {
    const result = await withProbe({ gate: 'held' }, async (h) => {
      await pauseFirstAttempt(h);
      await new Promise((r) => setTimeout(r, 300));
      expect(events).toEqual(['start 1', 'cancelled 1']); // not run again while paused
      expect((await h.describe()).status.name).toBe('RUNNING');
      gate = 'open';
      await h.signal(resumeProbe);
      return h.result();
    });
    expect(result).toBe(2);
    expect(events).toEqual(['start 1', 'cancelled 1', 'start 2']);
  });

  it('a boundary holds while paused: a probe started paused runs nothing until resumed', async () => {
    const result = await withProbe({ gate: 'open', paused: true }, async (h) => {
      await new Promise((r) => setTimeout(r, 300));
      expect(events).toEqual([]);
      await h.signal(resumeProbe);
      return h.result();
    });
    expect(result).toBe(1);
  });

  it('a failure that is not a pause ends the workflow', async () => {
    const failure = await withProbe({ gate: 'fail' }, (h) => h.result().catch((e: unknown) => e));
    expect(failure).toBeInstanceOf(WorkflowFailedError);
    const cause = (failure as WorkflowFailedError).cause;
    expect(cause).toBeInstanceOf(ActivityFailure);
    expect(cause?.cause).toMatchObject({ type: 'ProbeError', message: 'the activity broke' });
    expect(events).toEqual(['start 1']);
  });

  it('cancelling the workflow while paused ends it as cancelled', async () => {
    const failure = await withProbe({ gate: 'held' }, async (h) => {
      await pauseFirstAttempt(h);
      await h.cancel();
      return h.result().catch((e: unknown) => e);
    });
    expect(failure).toBeInstanceOf(WorkflowFailedError);
    expect((failure as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
    expect(events).toEqual(['start 1', 'cancelled 1']);
  });
});
