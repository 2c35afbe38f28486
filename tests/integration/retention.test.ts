import { describe, expect, it } from 'vitest';
import { startCampaign } from '../../client/campaigns';
import { resolveConfig } from '../../config/presets';
import { CheckpointStore } from '../../storage/checkpoints';
import { sizeOf } from '../../storage/manifest';
import { testConnection, uniqueCampaign, useWorkerAndClient } from './helpers';

const env = useWorkerAndClient();

describe('bounded storage (real Temporal + S3)', () => {
  it('a 40-epoch campaign keeps at most N intra checkpoints per stage once each stage is committed', async () => {
    const keepPartials = 1;
    const config = resolveConfig({
      preset: 'smoke',
      // Three steps an epoch with a checkpoint after each: two intra checkpoints per epoch, one kept.
      overrides: {
        rl: { epochs: 40, stepsPerEpoch: 3 },
        checkpoints: { sftEvery: 4, rlEvery: 1, keepPartials },
        eval: { problems: 8, scaling: { enabled: false } },
      },
    });
    const id = uniqueCampaign('retain');
    const result = await (await startCampaign(env.client(), { campaignId: id, config, preset: 'smoke' })).result();
    expect(result.epochs).toHaveLength(40);

    const store = new CheckpointStore(testConnection().s3);
    try {
      const ms = await store.list({ campaign: id });
      // A stage is a run: sft or rl-eNNNN; its result and its intra checkpoints (`<run>-sNNNNNN`).
      const stageOf = (name: string) => name.replace(/-s\d{6}$/, '');
      const perStage = new Map<string, { result: number; partial: number }>();
      for (const m of ms.filter((m) => m.kind === 'sft' || m.kind === 'rl' || m.kind === 'partial')) {
        const stage = stageOf(m.id.split('/')[1]);
        const c = perStage.get(stage) ?? { result: 0, partial: 0 };
        if (m.kind === 'partial') c.partial++;
        else c.result++;
        perStage.set(stage, c);
      }
      expect(perStage.size).toBe(41); // sft + 40 epochs
      for (const [stage, c] of perStage) {
        expect(c.result, stage).toBe(1);
        expect(c.partial, stage).toBe(keepPartials);
      }
      // What else stays: the dataset and one anchor per refresh (the final anchor is never needed).
      const kinds = ms.reduce<Record<string, number>>((a, m) => ({ ...a, [m.kind]: (a[m.kind] ?? 0) + 1 }), {});
      expect(kinds).toEqual({ dataset: 1, sft: 1, rl: 40, partial: 41 * keepPartials, anchor: 39 });
      const bytes = ms.reduce((s, m) => s + sizeOf(m), 0);
      console.log(`[retention] ${ms.length} checkpoints, ${(bytes / 1e6).toFixed(2)} MB in the bucket for ${id}`);
      expect(bytes).toBeGreaterThan(0);
    } finally {
      store.close();
    }
  }, 600_000);
});
