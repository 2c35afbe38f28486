import { ScheduleOverlapPolicy } from '@temporalio/client';
import { afterAll, describe, expect, it } from 'vitest';
import { scheduledCampaignAction } from '../../client/campaigns';
import { resolveConfig } from '../../config/presets';
import { promotionActivities } from '../../activities/promotion';
import { CheckpointStore } from '../../storage/checkpoints';
import { testConnection, uniqueCampaign, waitFor, useWorkerAndClient } from './helpers';

const conn = testConnection();
const store = new CheckpointStore(conn.s3);
const env = useWorkerAndClient();
afterAll(() => store.close());

describe('nightly retraining schedule', () => {
  it('a trigger warm-starts from the promoted checkpoint; a result that does not beat it is not promoted', async () => {
    const name = uniqueCampaign('nightly');
    // The gate (+1.0 accuracy) cannot be met once something is promoted: the second run must not replace it.
    const config = resolveConfig({ preset: 'smoke', overrides: { promotion: { minImprovement: 1 } } });
    const schedule = await env.client().schedule.create({
      scheduleId: name,
      spec: { cronExpressions: ['0 3 1 1 *'] },
      action: scheduledCampaignAction({ schedule: name, config, preset: 'smoke' }),
      policies: { overlap: ScheduleOverlapPolicy.SKIP },
    });
    const promoted = () => promotionActivities(store).getPromoted({ schedule: name });
    const runOnce = async (n: number) => {
      await schedule.trigger();
      const run = await waitFor(
        `scheduled run ${n}`,
        async () => (await schedule.describe()).info.recentActions[n - 1]?.action.workflow.workflowId,
        60_000,
      );
      return env.client().workflow.getHandle(run).result();
    };
    try {
      expect(await promoted()).toBeNull();
      const first = await runOnce(1);
      expect(first.promoted).toBe(true);
      const p1 = await promoted();
      expect(p1?.checkpoint).toEqual(first.checkpoints.final);
      expect(await store.isKept(first.checkpoints.final.id)).toBe(true);

      const second = await runOnce(2);
      // Warm start: the second campaign's SFT began from the promoted checkpoint.
      const sft = await store.manifest(second.checkpoints.sft.id);
      expect(sft?.parent).toBe(p1!.checkpoint.id);
      expect(second.promoted).toBe(false);
      expect(second.previous?.checkpoint).toEqual(p1!.checkpoint);
      expect((await promoted())?.checkpoint).toEqual(p1!.checkpoint);
    } finally {
      await schedule.delete();
    }
  });
});
