/**
 * Workflows started directly (as the `temporal` CLI or a Schedule made before a schema change
 * would) with input their schema refuses fail as workflows, naming the fields, instead of failing
 * their task, which Temporal retries forever. Stub activities on an ephemeral Temporal dev server,
 * as in campaign.test.ts.
 */
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PromotionActivities } from '../../../contracts/promotion';
import { campaignIdOf, type ReproductionActivities } from '../../../contracts/reproduce';
import type { RolloutActivities, RolloutStepInput } from '../../../contracts/rollout';
import { reproductionHandle, reproductionProgress, startCampaign, startReproduction } from '../../../client/campaigns';
import type { CampaignConfig } from '../../../config/campaign';
import { resolveConfig } from '../../../config/presets';
import { rlConfig, rolloutShards } from '../../../rl/config';
import { ReproduceOptionsSchema, reproductionPlan } from '../../../reproduce/plan';
import type { CampaignInput } from '../../../workflows/campaign';
import { QUEUES } from '../../../contracts/queues';
import type { ReproduceInput } from '../../../workflows/reproduce';
import { rolloutWorkflow } from '../../../workflows/rollout';
import { scheduledCampaignWorkflow, type ScheduledInput } from '../../../workflows/scheduled';
import { devServer, withWorkers } from './dev-server';

let env: TestWorkflowEnvironment;
beforeAll(async () => void (env = await devServer()), 120_000);
afterAll(() => env?.teardown());

/** Promotion, rollout and record stubs that record their calls; no campaign activity is registered (none may run). */
function stubs() {
  const calls: string[] = [];
  const activities: PromotionActivities & RolloutActivities & ReproductionActivities = {
    async getPromoted({ schedule }) {
      calls.push(`getPromoted:${schedule}`);
      return null;
    },
    async promote(p) {
      calls.push('promote');
      return { ...p, promotedAt: new Date(0).toISOString() };
    },
    async rolloutShard({ batch }) {
      calls.push(`rolloutShard:${batch.first}+${batch.prompts.length}`);
      return { first: batch.first, samples: [], seconds: 0 };
    },
    async storeReproductionRecord({ key }) {
      calls.push(`storeReproductionRecord:${key}`);
    },
  };
  return { calls, activities };
}

let n = 0;
const uniqueId = (what: string) => `${what}-${Date.now().toString(36)}-${n++}`;

const smoke = (): CampaignConfig =>
  resolveConfig({ preset: 'smoke', overrides: { rl: { epochs: 1 }, eval: { scaling: { enabled: false } } } });
/** A config the campaign schema refuses at rl.epochs (set after resolving, as a hand-written start would). */
const refusedConfig = (c = smoke()): CampaignConfig => ({ ...c, rl: { ...c.rl, epochs: -1 } });

/**
 * The failure a workflow ended with: it must have FAILED (not be still running, or retrying its
 * task) within 10 s, with a non-retryable ConfigError.
 */
async function configFailure(h: WorkflowHandle): Promise<ApplicationFailure> {
  const t0 = Date.now();
  const outcome = await Promise.race([
    h.result().then(
      () => 'completed',
      (e: unknown) => e,
    ),
    new Promise((r) => setTimeout(() => r('still running after 10 s'), 10_000)),
  ]);
  expect(outcome).toBeInstanceOf(WorkflowFailedError);
  expect(Date.now() - t0).toBeLessThan(10_000);
  expect((await h.describe()).status.name).toBe('FAILED');
  const cause = (outcome as WorkflowFailedError).cause;
  expect(cause).toBeInstanceOf(ApplicationFailure);
  expect(cause).toMatchObject({ type: 'ConfigError', nonRetryable: true });
  // One line: `path: message` per refused field.
  expect(cause!.message).not.toContain('\n');
  return cause as ApplicationFailure;
}

describe('workflow input the schemas refuse fails the workflow, naming the fields', () => {
  it('campaign: a config with rl.epochs -1 (and a bad warm start) ends FAILED at once, and nothing runs', async () => {
    const { calls, activities } = stubs();
    const failures = await withWorkers(env, activities, async () => {
      const bad = await startCampaign(env.client, { campaignId: uniqueId('bad-config'), config: refusedConfig(), preset: 'smoke' });
      const two = await startCampaign(env.client, {
        campaignId: uniqueId('bad-two'),
        config: { ...refusedConfig(), model: { ...smoke().model, dModel: 'wide' as unknown as number } },
        warmStart: { id: 'x/sft' } as CampaignInput['warmStart'],
      });
      return Promise.all([configFailure(bad), configFailure(two)]);
    });
    expect(failures[0].message).toMatch(/^invalid campaign input: config\.rl\.epochs: .+/);
    expect(failures[1].message).toMatch(/config\.rl\.epochs: /);
    expect(failures[1].message).toMatch(/config\.model\.dModel: /);
    expect(failures[1].message).toMatch(/warmStart\.sha256: /);
    expect(failures[1].details).toEqual([
      { issues: expect.arrayContaining([{ path: ['config', 'rl', 'epochs'], message: expect.any(String) }]) },
    ]);
    expect(calls).toEqual([]);
  });

  it('scheduled: a schedule whose config the schema refuses fails before it looks up the promoted checkpoint; a valid one runs', async () => {
    const { calls, activities } = stubs();
    const start = (input: ScheduledInput) =>
      env.client.workflow.start(scheduledCampaignWorkflow, { taskQueue: QUEUES.cpu, workflowId: input.schedule, args: [input] });
    await withWorkers(env, activities, async () => {
      const bad = await start({ schedule: uniqueId('nightly-bad'), config: refusedConfig(), preset: 'smoke' });
      expect((await configFailure(bad)).message).toMatch(/^invalid scheduled campaign input: config\.rl\.epochs: /);
      expect(calls).toEqual([]);

      // The check accepts what `t1 schedule create` sends: the workflow goes on to the promotion lookup and its campaign.
      const schedule = uniqueId('nightly-ok');
      const ok = await start({ schedule, config: smoke(), preset: 'smoke' });
      try {
        await until('the promotion lookup', () => calls.includes(`getPromoted:${schedule}`));
        await until(
          'the child campaign',
          async () => (await env.client.workflow.getHandle(`${schedule}-campaign`).describe()).status.name === 'RUNNING',
        );
      } finally {
        await ok.terminate('test done');
      }
    });
  });

  it('reproduce: a plan with a refused ablation config, or no plan, fails before any campaign starts; a planned one starts', async () => {
    const plan = reproductionPlan(resolveConfig({ preset: 'quick' }), ReproduceOptionsSchema.parse({ arms: ['no-kl'] }));
    const { activities } = stubs();
    await withWorkers(env, activities, async () => {
      const id = uniqueId('repro-bad');
      const ablations = plan.ablations.map((a, i) => (i === 1 ? { ...a, config: refusedConfig(a.config) } : a));
      const bad = await startReproduction(env.client, { id, plan: { ...plan, ablations } });
      expect((await configFailure(bad)).message).toMatch(/^invalid reproduction input: plan\.ablations\.1\.config\.rl\.epochs: /);
      await expect(env.client.workflow.getHandle(campaignIdOf(id, plan.base[0])).describe()).rejects.toThrow(/not found/i);

      const none = await startReproduction(env.client, { id: uniqueId('repro-none') } as ReproduceInput);
      expect((await configFailure(none)).message).toMatch(/^invalid reproduction input: plan: /);

      // The CLI's plan passes: the first base campaign starts.
      const okId = uniqueId('repro-ok');
      const ok = await startReproduction(env.client, { id: okId, plan });
      try {
        await until(
          'the first campaign',
          async () => (await reproductionProgress(reproductionHandle(env.client, okId))).running === campaignIdOf(okId, plan.base[0]),
        );
      } finally {
        await ok.terminate('test done');
      }
    });
  });

  it('rollout: a step without its batch or with an empty shard fails before any shard runs; a step as the trainer builds it completes', async () => {
    const { calls, activities } = stubs();
    const rl = rlConfig({ promptsPerStep: 4, samplesPerPrompt: 4, sampleBatch: 8, rollout: { mode: 'workers' } });
    const valid: RolloutStepInput = {
      weights: { sha256: 'ab'.repeat(32), bytes: 10 },
      backend: 'cpu',
      batch: {
        prompts: [[1, 2], [3], [4, 5], [6]],
        first: 0,
        samplesPerPrompt: rl.samplesPerPrompt,
        stepSeed: 7,
        sampleBatch: rl.sampleBatch,
        sampling: { maxNewTokens: rl.maxNewTokens, temperature: rl.temperature, topP: rl.topP, minP: rl.minP },
      },
      shards: rolloutShards(rl),
    };
    const start = (input: RolloutStepInput) =>
      env.client.workflow.start(rolloutWorkflow, { taskQueue: QUEUES.rollout, workflowId: uniqueId('rollouts'), args: [input] });
    await withWorkers(env, activities, async () => {
      const { batch: _, ...noBatch } = valid;
      const bad = await start({ ...noBatch, shards: [...valid.shards, { first: 4, count: 0 }] } as RolloutStepInput);
      const message = (await configFailure(bad)).message;
      expect(message).toMatch(/^invalid rollout step input: /);
      expect(message).toMatch(/batch: /);
      expect(message).toMatch(/shards\.2\.count: /);
      expect(calls).toEqual([]);

      const results = await (await start(valid)).result();
      expect(results.map((r) => r.first)).toEqual([0, 2]);
      expect(calls.sort()).toEqual(['rolloutShard:0+2', 'rolloutShard:2+2']);
    });
  });
});

async function until(what: string, check: () => Promise<boolean> | boolean, ms = 15_000): Promise<void> {
  const t0 = Date.now();
  while (
    !(await Promise.resolve()
      .then(check)
      .catch(() => false))
  ) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
