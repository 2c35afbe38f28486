/**
 * Permanent failures are not retried (rules/failures.ts), on the real servers: a worker whose S3
 * secret is wrong refuses to start, naming the setting; a campaign warm-started from a checkpoint
 * that was deleted fails on its first attempt instead of retrying for half an hour.
 */
import { WorkflowFailedError } from '@temporalio/client';
import { describe, expect, it } from 'vitest';
import { startCampaign } from '../../client/campaigns';
import { NO_GRANTS } from '../../util/grants';
import { resolveConfig } from '../../config/presets';
import { startWorkers } from '../../workers/worker';
import { testConnection, uniqueCampaign, useWorkerAndClient } from './helpers';

describe('permanent failures', () => {
  it('a worker with a wrong S3 secret refuses to start, naming the setting and not the secret', async () => {
    const conn = testConnection();
    const wrong = { ...conn, s3: { ...conn.s3, secretAccessKey: 'wrong-secret-value' } };
    const err = await startWorkers(wrong, 'all', NO_GRANTS).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/^s3\.(secretAccessKey \[T1_S3_SECRET_ACCESS_KEY\]|accessKeyId \[T1_S3_ACCESS_KEY_ID\]): /);
    expect((err as Error).message).toContain('this worker will not poll');
    expect((err as Error).message).not.toContain('wrong-secret-value');
  }, 60_000);

  const { client } = useWorkerAndClient();

  it('a campaign warm-started from a deleted checkpoint fails on the first attempt, naming it', async () => {
    const id = uniqueCampaign('gone');
    const handle = await startCampaign(client(), {
      campaignId: id,
      config: resolveConfig({ preset: 'smoke' }),
      warmStart: { id: `${id}-old/rl-e0001`, sha256: 'f'.repeat(64), step: 1 },
    });
    const t0 = Date.now();
    const err = await handle.result().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkflowFailedError);
    expect(Date.now() - t0).toBeLessThan(60_000);
    let root: any = (err as WorkflowFailedError).cause;
    while (root?.cause) root = root.cause;
    expect(root.message).toContain(`checkpoint ${id}-old/rl-e0001 does not exist`);
    const history = await handle.fetchHistory();
    const started = history.events!.filter((e) => e.activityTaskStartedEventAttributes);
    expect(started.every((e) => Number(e.activityTaskStartedEventAttributes!.attempt) === 1)).toBe(true);
  }, 120_000);
});
