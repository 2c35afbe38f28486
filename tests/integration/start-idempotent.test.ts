/**
 * `t1 campaign start` is safe to retry: with the same id (given, or derived from the same command
 * on the same day) it never makes a second workflow execution, whether the retries race or follow
 * each other, and whatever state the first one is in.
 */
import type { Client } from '@temporalio/client';
import { afterAll, describe, expect, it } from 'vitest';
import { campaignHandle } from '../../client/campaigns';
import { killHard, spawnWorker, t1, uniqueCampaign, useClientAndStore, waitFor } from './helpers';

const { client } = useClientAndStore();
const ids: string[] = [];
let worker: ReturnType<typeof spawnWorker> | undefined;
afterAll(async () => {
  for (const id of ids)
    await campaignHandle(client(), id)
      .terminate('test over')
      .catch(() => undefined);
  if (worker) await killHard(worker);
});

/** Every execution the server holds under this workflow id (its visibility store, newest first). */
async function executions(c: Client, id: string): Promise<string[]> {
  const runs: string[] = [];
  for await (const w of c.workflow.list({ query: `WorkflowId = '${id}'` })) runs.push(w.runId);
  return runs;
}

const startJson = async (...args: string[]) => {
  const r = await t1('campaign', 'start', '--preset', 'smoke', ...args, '--json');
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as { id: string; runId: string; outcome: string };
};

describe('campaign start, retried', () => {
  it('3 concurrent and 3 sequential starts with one id make one execution and return the same run', async () => {
    const id = uniqueCampaign('idem');
    ids.push(id);
    const raced = await Promise.all([1, 2, 3].map(() => startJson('--id', id)));
    const runId = raced[0].runId;
    for (const r of raced) expect(r).toMatchObject({ id, runId });
    expect(raced.map((r) => r.outcome)).toContain('started');
    for (let i = 0; i < 3; i++) expect(await startJson('--id', id)).toMatchObject({ id, runId, outcome: 'running' });
    expect(
      await waitFor('the execution in visibility', async () => (await executions(client(), id)).length > 0 && executions(client(), id)),
    ).toEqual([runId]);

    // Another config under the taken id is refused, naming the way out.
    const other = await t1('campaign', 'start', '--preset', 'smoke', '--seed', '99', '--id', id);
    expect(other.code).toBe(1);
    expect(other.stderr.trim()).toMatch(
      new RegExp(`^t1 campaign start: ${id} belongs to a campaign with a different config \\(RUNNING, started .*\\): pass another --id$`),
    );

    // A campaign that ended without completing is not started again either.
    await campaignHandle(client(), id).terminate('test: ended early');
    const again = await t1('campaign', 'start', '--preset', 'smoke', '--id', id);
    expect(again.code).toBe(1);
    expect(again.stderr.trim()).toMatch(
      new RegExp(
        `^t1 campaign start: ${id} already ran and ended TERMINATED \\(.*\\); an id is never reused: pass another --id to run it again$`,
      ),
    );
    expect(await executions(client(), id)).toEqual([runId]);
  });

  it('without --id, the same command on the same day names the same campaign: <preset>-<UTC date>-<config hash>', async () => {
    const first = await startJson('--seed', '17');
    ids.push(first.id);
    const day = new Date().toISOString().slice(0, 10).replaceAll('-', '');
    expect(first.id).toMatch(new RegExp(`^smoke-${day}-[0-9a-f]{6}$`));
    expect(await startJson('--seed', '17')).toEqual({ ...first, outcome: 'running' });
    const otherSeed = await startJson('--seed', '18');
    ids.push(otherSeed.id);
    expect(otherSeed.id).not.toBe(first.id);
    expect(otherSeed.outcome).toBe('started');
  });

  it('a completed campaign is reported, not run again: --wait prints its result', { timeout: 300_000 }, async () => {
    worker = spawnWorker();
    const id = uniqueCampaign('idem-done');
    const run = await t1('campaign', 'start', '--preset', 'smoke', '--id', id, '--wait', '--json');
    expect(run.code, run.stderr).toBe(0);
    const result = JSON.parse(run.stdout);
    expect(result.status).toBe('completed');

    const retried = await t1('campaign', 'start', '--preset', 'smoke', '--id', id, '--wait', '--json');
    expect(retried.code, retried.stderr).toBe(0);
    expect(JSON.parse(retried.stdout).checkpoints.final).toEqual(result.checkpoints.final);
    const plain = await t1('campaign', 'start', '--preset', 'smoke', '--id', id);
    expect(plain.code).toBe(0);
    expect(plain.stdout).toMatch(
      new RegExp(`^${id} already completed \\(.*\\): not started again; to run this config again, pass another --id\\n`),
    );
    expect(await executions(client(), id)).toHaveLength(1);
  });
});
