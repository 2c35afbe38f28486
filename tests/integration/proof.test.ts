import { Worker } from '@temporalio/worker';
import { describe, expect, it } from 'vitest';
import { startService, stopService } from '../../infra/stack';
import { runProof } from '../../client/campaigns';
import { connectClient } from '../../infra/temporal';
import { CheckpointStore } from '../../storage/checkpoints';
import { workflowBundle } from '../../workers/worker';
import { QUEUES } from '../../contracts/queues';
import { testConnection, testStack, uniqueCampaign, useWorkerAndClient } from './helpers';

const conn = testConnection();
const env = useWorkerAndClient();

describe('proof workflow (real Temporal dev server + S3)', () => {
  it('a CPU activity writes a checkpoint, a GPU activity verifies it by reference; history replays; a Temporal restart keeps it', async () => {
    const campaign = uniqueCampaign('proof');
    const result = await runProof(env.client(), { campaign, seed: 7 });
    expect(result.read).toMatchObject({ id: `${campaign}/proof`, verified: true, bytes: 65536 });
    expect(result.read.sha256).toBe(result.ref.sha256);

    const store = new CheckpointStore(conn.s3);
    expect((await store.manifest(`${campaign}/proof`))?.kind).toBe('proof');
    store.close();

    // Both queues really ran an activity.
    const history = await env.client().workflow.getHandle(campaign).fetchHistory();
    const queues = history
      .events!.filter((e) => e.activityTaskScheduledEventAttributes)
      .map((e) => e.activityTaskScheduledEventAttributes!.taskQueue!.name);
    expect(queues).toEqual([QUEUES.cpu, QUEUES.gpu]);
    // Payloads are references, not bytes.
    expect(JSON.stringify(history).length).toBeLessThan(20_000);

    await Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, history, campaign);

    // Restart the Temporal dev server: the completed workflow's history is still there.
    await stopService(testStack(), 'temporal');
    await startService(testStack(), 'temporal');
    const fresh = await connectClient(conn.temporal);
    try {
      const desc = await fresh.workflow.getHandle(campaign).describe();
      expect(desc.status.name).toBe('COMPLETED');
      const again = await fresh.workflow.getHandle(campaign).fetchHistory();
      expect(again.events!.length).toBe(history.events!.length);
    } finally {
      await fresh.connection.close();
    }
  });
});
