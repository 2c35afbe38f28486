import { describe, expect, it } from 'vitest';
import { startReproduction } from '../../client/campaigns';
import { resolveConfig } from '../../config/presets';
import { withChanges } from '../../reproduce/plan';
import { buildReproductionReport } from '../../report/reproduction';
import { campaignIdOf } from '../../workflows/reproduce';
import { uniqueCampaign, useWorkerAndClient } from './helpers';

const env = useWorkerAndClient();

describe('reproduce workflow (real Temporal + S3)', () => {
  it('runs each seed as a base campaign and ablations that start RL from its SFT stage', async () => {
    const smoke = resolveConfig({ preset: 'smoke' });
    const plan = {
      epochs: 2,
      stepsPerEpoch: 2,
      estimatedMinutes: 1,
      base: [1, 2].map((seed) => ({ seed, arm: 'base', config: withChanges(smoke, { seed }) })),
      ablations: [1, 2].map((seed) => ({
        seed,
        arm: 'no-kl',
        config: withChanges(smoke, { seed, 'rl.betaKl': 0, 'eval.scaling.enabled': false }),
      })),
    };
    const id = uniqueCampaign('repro');
    const runs = await (await startReproduction(env.client(), { id, plan })).result();
    expect(runs.map((r) => `${r.seed}/${r.arm}`)).toEqual(['1/base', '1/no-kl', '2/base', '2/no-kl']);
    expect(runs.map((r) => r.campaignId)).toEqual(runs.map((r) => campaignIdOf(id, r)));
    for (const seed of [1, 2]) {
      const [base, ablation] = runs.filter((r) => r.seed === seed);
      // The ablation trained from the base's SFT model and compares against the same SFT evaluation.
      expect(ablation.result.checkpoints.sft).toEqual(base.result.checkpoints.sft);
      expect(ablation.result.results.sft).toEqual(base.result.results.sft);
      expect(ablation.result.config.rl.betaKl).toBe(0);
      const history = await env.client().workflow.getHandle(ablation.campaignId).fetchHistory();
      const activities = history
        .events!.filter((e) => e.activityTaskScheduledEventAttributes)
        .map((e) => e.activityTaskScheduledEventAttributes!.activityType!.name);
      expect(activities).toEqual(['rlEpoch', 'refreshAnchor', 'rlEpoch', 'evaluate']);
    }
    const report = buildReproductionReport(runs, {
      command: 'test',
      machine: 'test',
      backend: 'test',
      generatedAt: 'now',
      seconds: {},
      totalSeconds: 1,
    });
    expect(report.markdown).toContain('## Inference scaling');
    expect(report.markdown).toContain('| no-kl | no KL penalty |');
  });
});
