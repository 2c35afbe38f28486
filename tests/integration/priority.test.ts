/**
 * Task-queue priority (`campaign start --priority`): two smoke campaigns wait for the one GPU
 * worker's one activity slot, the low-priority one queued first; the GPU worker takes the
 * high-priority one's SFT first, although first-in-first-out would have picked the other.
 */
import type { Client } from '@temporalio/client';
import { afterAll, describe, expect, it } from 'vitest';
import { campaignHandle } from '../../client/campaigns';
import { loadGrants } from '../../util/grants';
import { startWorkers, type RunningWorkers } from '../../workers/worker';
import { QUEUES } from '../../contracts/queues';
import { t1, testConnection, uniqueCampaign, useClientAndStore, waitFor } from './helpers';

const { client } = useClientAndStore();
const running: RunningWorkers[] = [];
const ids: string[] = [];
afterAll(async () => {
  for (const id of ids)
    await campaignHandle(client(), id)
      .terminate('test over')
      .catch(() => undefined);
  for (const w of running) await w.shutdown();
});

/** When the campaign's SFT activity was scheduled and started (ms), from its history. */
async function sftTimes(c: Client, id: string): Promise<{ scheduled?: number; started?: number }> {
  const ms = (t: { seconds?: unknown; nanos?: number | null } | null | undefined) => Number(t?.seconds ?? 0) * 1000 + (t?.nanos ?? 0) / 1e6;
  const events = (await campaignHandle(c, id).fetchHistory()).events ?? [];
  const scheduled = events.find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'sftTrain');
  const started =
    scheduled && events.find((e) => String(e.activityTaskStartedEventAttributes?.scheduledEventId) === String(scheduled.eventId));
  return { scheduled: scheduled && ms(scheduled.eventTime), started: started && ms(started.eventTime) };
}

describe('campaign start --priority', () => {
  it("runs the higher-priority campaign's GPU activities first on a shared GPU worker", { timeout: 300_000 }, async () => {
    const conn = testConnection();
    // Workflows and synthesis only: both campaigns reach SFT and queue it on the GPU queue, which nothing polls yet.
    running.push(await startWorkers(conn, 'cpu', loadGrants({}, {})));
    const low = uniqueCampaign('prio-low');
    const high = uniqueCampaign('prio-high');
    ids.push(low, high);
    for (const [id, priority] of [
      [low, '5'],
      [high, '1'],
    ]) {
      const r = await t1('campaign', 'start', '--preset', 'smoke', '--id', id, '--priority', priority, '--json');
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout)).toMatchObject({ id, outcome: 'started' });
      // Queued one after the other, so that the order of arrival favours the low-priority one.
      await waitFor(`${id}'s SFT on ${QUEUES.gpu}`, async () => (await sftTimes(client(), id)).scheduled);
    }
    const described = await campaignHandle(client(), high).describe();
    expect(described.raw.workflowExecutionInfo?.priority?.priorityKey).toBe(1);

    running.push(await startWorkers(conn, 'gpu', loadGrants({}, {}))); // one activity slot
    // A started event enters the history when its activity ends, stamped with the time it started.
    const both = () => Promise.all([sftTimes(client(), low), sftTimes(client(), high)]);
    const [l, h] = await waitFor(
      'both SFT activities to run',
      async () => {
        const t = await both();
        return t.every((x) => x.started !== undefined) && t;
      },
      180_000,
      500,
    );
    expect(l.scheduled!).toBeLessThan(h.scheduled!);
    expect(h.started!).toBeLessThan(l.started!);
  });
});
