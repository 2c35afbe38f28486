import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { reproductionActivities } from '../../activities/reproduce';
import { writeReproductionReport } from '../../cli/commands/reproduce';
import { startReproduction } from '../../client/campaigns';
import { resolveConfig } from '../../config/presets';
import { matchBaseSampling, withChanges, type ReproductionPlan } from '../../reproduce/plan';
import { loadReproduction, planKey } from '../../reproduce/records';
import { buildReproductionReport } from '../../report/reproduction';
import { CheckpointStore } from '../../storage/checkpoints';
import { campaignIdOf } from '../../contracts/reproduce';
import { t1, testConnection, uniqueCampaign, useWorkerAndClient } from './helpers';

const env = useWorkerAndClient();

describe('reproduce workflow (real Temporal + S3)', () => {
  it('runs each seed as a base campaign and ablations from its SFT stage, stores every result, and --report-only writes the same bytes', async () => {
    const smoke = resolveConfig({ preset: 'smoke' });
    const seeds = [1, 2];
    // A test-sized plan in place of reproductionPlan's (the quick preset at hours): the smoke preset, two arms, two seeds.
    const arm = (seed: number, name: string, changes: Record<string, unknown>, matchSampling = false) => ({
      seed,
      arm: name,
      config: withChanges(smoke, { seed, ...changes, 'eval.scaling.enabled': false }),
      ...(matchSampling && { matchSampling }),
    });
    const plan: ReproductionPlan = {
      options: { minutes: 1, seeds, arms: ['no-kl', 'refill'] },
      epochs: 2,
      stepsPerEpoch: 2,
      estimatedMinutes: 1,
      base: seeds.map((seed) => ({ seed, arm: 'base', config: withChanges(smoke, { seed }) })),
      ablations: seeds.flatMap((seed) => [
        arm(seed, 'no-kl', { 'rl.betaKl': 0 }),
        arm(seed, 'refill', { 'rl.dynamicSampling.enabled': true }, true),
      ]),
    };
    const id = uniqueCampaign('repro');
    const host = { machine: 'the test machine', backend: 'test' };
    const runs = await (await startReproduction(env.client(), { id, plan, host })).result();
    expect(runs.map((r) => `${r.seed}/${r.arm}`)).toEqual(['1/base', '1/no-kl', '1/refill', '2/base', '2/no-kl', '2/refill']);
    expect(runs.map((r) => r.campaignId)).toEqual(runs.map((r) => campaignIdOf(id, r)));
    for (const seed of seeds) {
      const [base, noKl, refill] = runs.filter((r) => r.seed === seed);
      for (const ablation of [noKl, refill]) {
        // The ablation trained from the base's SFT model and compares against the same SFT evaluation.
        expect(ablation.result.checkpoints.sft).toEqual(base.result.checkpoints.sft);
        expect(ablation.result.results.sft).toEqual(base.result.results.sft);
      }
      expect(noKl.result.config.rl.betaKl).toBe(0);
      const history = await env.client().workflow.getHandle(noKl.campaignId).fetchHistory();
      const activities = history
        .events!.filter((e) => e.activityTaskScheduledEventAttributes)
        .map((e) => e.activityTaskScheduledEventAttributes!.activityType!.name);
      expect(activities).toEqual(['rlEpoch', 'refreshAnchor', 'rlEpoch', 'evaluate']);
      // Refill ran with the B its seed's base gave it.
      const planned = plan.ablations.find((a) => a.seed === seed && a.arm === 'refill')!.config;
      expect(refill.result.config.rl).toMatchObject({
        dynamicSampling: { enabled: true },
        promptsPerStep: matchBaseSampling(planned, base.result).rl.promptsPerStep,
      });
      expect(runs.every((r) => r.result.epochs.every((e) => e.sampledTokens! > 0))).toBe(true);
    }

    const conn = testConnection();
    const store = new CheckpointStore(conn.s3);
    try {
      // What the workflow returned is what it stored.
      const stored = await loadReproduction(store, id);
      expect(stored.runs).toEqual(runs);
      expect(stored.record).toEqual({ id, plan, host });
      expect(stored.missing).toEqual([]);
      // Records are written once: the same record again is a no-op, another one under the key is refused.
      const records = reproductionActivities(store);
      await records.storeReproductionRecord({ key: planKey(id), value: stored.record });
      await expect(records.storeReproductionRecord({ key: planKey(id), value: { ...stored.record, host: undefined } })).rejects.toThrow(
        /this reproduction id was used before/,
      );
    } finally {
      store.close();
    }

    // The report the run writes, and the one --report-only writes in another process from S3 alone: the same bytes.
    const ran = mkdtempSync(join(tmpdir(), 't1-repro-run-'));
    const again = mkdtempSync(join(tmpdir(), 't1-repro-again-'));
    const { markdown } = await writeReproductionReport(conn.s3, id, ran);
    expect(markdown).toBe(buildReproductionReport(runs, { id, options: plan.options, host, missing: [] }).markdown);
    const r = await t1('reproduce', '--report-only', '--id', id, '--out', again);
    expect(r.code, r.stderr).toBe(0);
    for (const f of ['reproduction.md', 'reproduction.html'])
      expect(readFileSync(join(again, f)).equals(readFileSync(join(ran, f))), f).toBe(true);
    expect(r.stdout).toContain(
      `Reproduction \`${id}\`, run with \`npx t1 reproduce --minutes 1 --seeds 1,2 --arms no-kl,refill --id ${id}\``,
    );
    expect(markdown).toContain('| refill | dynamic sampling |');

    const none = await t1('reproduce', '--report-only', '--id', `${id}-nope`);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain(`no stored reproduction "${id}-nope"`);
  }, 900_000);
});
