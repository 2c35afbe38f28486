/**
 * The campaign workflow's logic against stub activities, on an ephemeral Temporal dev server (the
 * same provisioned binary as the local stack): stage order, anchor refreshes, pause / resume /
 * cancel, hyper-parameter updates, continue-as-new and the scaling fan-out. No model, no S3.
 */
import { Context } from '@temporalio/activity';
import { WorkflowFailedError } from '@temporalio/client';
import { CancelledFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { campaignStatus, pauseCampaign, resumeCampaign, setHyperparameters, startCampaign } from '../../../client/campaigns';
import { resolveConfig } from '../../../config/presets';
import type { CheckpointRef } from '../../../storage/manifest';
import type { CampaignInput } from '../../../workflows/campaign';
import type { CampaignActivities, EvalSummary, RlEpochSummary, ScalingActivities } from '../../../contracts/campaign';
import { devServer, withWorkers } from './dev-server';

type Activities = CampaignActivities & ScalingActivities;

let env: TestWorkflowEnvironment;
beforeAll(async () => void (env = await devServer()), 120_000);
afterAll(() => env?.teardown());

const ref = (id: string, step = 0): CheckpointRef => ({ id, sha256: id.padEnd(64, '0').slice(0, 64), step });
const evalOf = (label: string, checkpoint: CheckpointRef | null): EvalSummary => ({
  label,
  checkpoint,
  accuracy: 0.5,
  stderr: 0.01,
  greedyAccuracy: 0.5,
  n: 16,
  samples: 4,
  temperature: 1,
  garbageRate: 0,
  meanLength: 10,
});

/** Stub activities that record every call; `sftGate` holds SFT (heartbeating) until it resolves or the activity is cancelled. */
function stubs(opts: { sftGate?: Promise<void> } = {}) {
  const calls: string[] = [];
  const rlInputs: Parameters<Activities['rlEpoch']>[0][] = [];
  const activities: Activities = {
    async pinTask({ config }) {
      calls.push(`pinTask:${config.task.file}`);
      return { ...config, task: { ...config.task, sha256: 'ab'.repeat(32) } };
    },
    async synthesize({ campaignId, config }) {
      calls.push(config.task.sha256 ? `synthesize:${config.task.sha256.slice(0, 4)}` : 'synthesize');
      return ref(`${campaignId}/dataset`);
    },
    async sftTrain({ campaignId }) {
      calls.push('sftTrain');
      const gate = opts.sftGate;
      opts.sftGate = undefined; // only the first attempt waits
      if (gate) {
        const ctx = Context.current();
        let open = false;
        void gate.then(() => (open = true));
        while (!open) {
          ctx.heartbeat();
          await Promise.race([ctx.sleep(50), ctx.cancelled]);
        }
      }
      const checkpoint = ref(`${campaignId}/sft`, 12);
      return { checkpoint, steps: 12, trainLoss: 1, valLoss: 1, valAccuracy: 0.1, tokensPerS: 1, seconds: 1, resumedFromStep: 0 };
    },
    async evaluate({ checkpoint, label }) {
      calls.push(`evaluate:${label}`);
      return evalOf(label, checkpoint);
    },
    async filterPrompts({ campaignId }) {
      calls.push('filterPrompts');
      return { checkpoint: ref(`${campaignId}/prompt-filter`), candidates: 8, kept: 3, meanPassRate: 0.2 };
    },
    async rlEpoch(input) {
      calls.push(`rlEpoch:${input.epoch}`);
      rlInputs.push(input);
      const checkpoint = ref(`${input.campaignId}/rl-e${input.epoch}`, input.epoch);
      const summary: RlEpochSummary = {
        epoch: input.epoch,
        checkpoint,
        steps: input.config.rl.stepsPerEpoch,
        reward: 0,
        accuracy: 0,
        kl: 0,
        entropy: 0,
        garbageRate: 0,
        responseLength: 0,
        zeroVarianceGroups: 0,
        difficulty: 3,
        klPenalty: 0,
        rewardSpread: 0,
        entropyGradRatio: 0,
        tokensPerS: 0,
        seconds: 0,
        resumedFromStep: 0,
      };
      return input.config.rl.anchor.mode === 'ema'
        ? { ...summary, anchor: ref(`${input.campaignId}/anchor-ema-e${input.epoch}`) }
        : summary;
    },
    async refreshAnchor({ campaignId, epoch }) {
      calls.push(`refreshAnchor:${epoch}`);
      return ref(`${campaignId}/anchor-e${epoch}`);
    },
    async publishWeights({ checkpoint }) {
      calls.push(`publish:${checkpoint.id.split('/')[1]}`);
      return { sha256: `w-${checkpoint.sha256}`, bytes: 1 };
    },
    async scalingPoint({ label, checkpoint, budget, weights }) {
      if (weights?.sha256 !== `w-${checkpoint.sha256}`) throw new Error(`scaling point of ${checkpoint.id} without its published weights`);
      calls.push(`scaling:${label}:${checkpoint.id.split('/')[1]}@${budget ?? 'full'}`);
      return {
        label,
        checkpoint,
        budget: budget ?? 64,
        untruncated: budget === null,
        accuracy: 0.5,
        forced: 0,
        meanLength: 10,
        meanSteps: 1,
        cached: false,
      };
    },
  };
  return { calls, rlInputs, activities };
}

let n = 0;
function start(overrides: Record<string, unknown>, extra: Partial<CampaignInput> = {}) {
  const campaignId = `wf-${Date.now().toString(36)}-${n++}`;
  const config = resolveConfig({ preset: 'smoke', overrides });
  return startCampaign(env.client, { campaignId, config, preset: 'smoke', ...extra });
}

async function until(what: string, check: () => Promise<boolean> | boolean, ms = 15_000): Promise<void> {
  const t0 = Date.now();
  while (!(await check())) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('campaign workflow logic (stub activities)', () => {
  it('pins a jsonl task file the client left unpinned before anything reads it, and every stage sees the pin', async () => {
    const { calls, rlInputs, activities } = stubs();
    await withWorkers(env, activities, async () => {
      const h = await start({
        task: { name: 'jsonl', file: 's3://data/problems.jsonl' },
        rl: { epochs: 1 },
        eval: { scaling: { enabled: false } },
      });
      return h.result();
    });
    expect(calls.slice(0, 3)).toEqual(['pinTask:s3://data/problems.jsonl', 'synthesize:abab', 'sftTrain']);
    expect(rlInputs[0].config.task.sha256).toBe('ab'.repeat(32));
  });

  it('a campaign on a pretrained base evaluates the base zero-shot before SFT, and reports it first', async () => {
    const { calls, activities } = stubs();
    const result = await withWorkers(env, activities, async () => {
      const h = await start({
        model: { base: { uri: 'builtin://smollm2-135m-instruct', sha256: 'cd'.repeat(32) }, lora: {} },
        rl: { epochs: 1 },
        eval: { scaling: { enabled: false } },
      });
      return h.result();
    });
    expect(calls).toEqual(['synthesize', 'evaluate:base', 'sftTrain', 'evaluate:sft', 'rlEpoch:1', 'evaluate:final']);
    expect(result.evals.map((e) => [e.label, e.checkpoint?.id ?? null])).toEqual([
      ['base', null],
      ['sft', `${result.id}/sft`],
      ['final', `${result.id}/rl-e1`],
    ]);
  });

  it('runs the stages in order; refreshes the anchor every E epochs but not after the last; sweeps scaling at 30/60/100%', async () => {
    const { calls, rlInputs, activities } = stubs();
    const result = await withWorkers(env, activities, async () => {
      const h = await start({
        rl: { epochs: 5, anchor: { mode: 'refresh', refreshEveryEpochs: 2 } },
        eval: { scaling: { budgets: [16] } },
      });
      return h.result();
    });
    const id = result.id;
    const scaling = calls.filter((c) => c.startsWith('scaling:'));
    const publish = calls.filter((c) => c.startsWith('publish:'));
    // Every scaling checkpoint's weights published once, before its points.
    expect(publish.sort()).toEqual(['publish:rl-e2', 'publish:rl-e3', 'publish:rl-e5', 'publish:sft']);
    expect(calls.slice(0, calls.length - scaling.length - publish.length)).toEqual([
      'synthesize',
      'sftTrain',
      'evaluate:sft',
      'rlEpoch:1',
      'rlEpoch:2',
      'refreshAnchor:2',
      'rlEpoch:3',
      'rlEpoch:4',
      'refreshAnchor:4',
      'rlEpoch:5',
      'evaluate:final',
    ]);
    // Each epoch trains from the previous epoch's policy against the anchor in force.
    expect(rlInputs.map((i) => [i.policy.id, i.anchor.id])).toEqual([
      [`${id}/sft`, `${id}/sft`],
      [`${id}/rl-e1`, `${id}/sft`],
      [`${id}/rl-e2`, `${id}/anchor-e2`],
      [`${id}/rl-e3`, `${id}/anchor-e2`],
      [`${id}/rl-e4`, `${id}/anchor-e4`],
    ]);
    expect(result.anchorRefreshes.map((r) => r.epoch)).toEqual([2, 4]);
    expect(scaling.sort()).toEqual(
      [
        'scaling:rl 100%:rl-e5@16',
        'scaling:rl 100%:rl-e5@full',
        'scaling:rl 40%:rl-e2@16',
        'scaling:rl 40%:rl-e2@full',
        'scaling:rl 60%:rl-e3@16',
        'scaling:rl 60%:rl-e3@full',
        'scaling:sft:sft@16',
        'scaling:sft:sft@full',
      ].sort(),
    );
    expect(result.checkpoints.final.id).toBe(`${id}/rl-e5`);
  });

  it('frozen anchor never moves; ema takes the anchor each epoch returns; rl.filter runs once and reaches every epoch', async () => {
    const frozen = stubs();
    await withWorkers(env, frozen.activities, async () => (await start({ rl: { epochs: 3, anchor: { mode: 'frozen' } } })).result());
    expect(frozen.calls.filter((c) => c.startsWith('refreshAnchor'))).toEqual([]);
    expect(new Set(frozen.rlInputs.map((i) => i.anchor.id.split('/')[1]))).toEqual(new Set(['sft']));

    const ema = stubs();
    await withWorkers(env, ema.activities, async () => (await start({ rl: { epochs: 3, anchor: { mode: 'ema' } } })).result());
    expect(ema.rlInputs.map((i) => i.anchor.id.split('/')[1])).toEqual(['sft', 'anchor-ema-e1', 'anchor-ema-e2']);

    const filtered = stubs();
    const r = await withWorkers(env, filtered.activities, async () =>
      (await start({ rl: { epochs: 2, filter: { enabled: true, candidates: 8 } }, eval: { scaling: { enabled: false } } })).result(),
    );
    expect(filtered.calls).toEqual([
      'synthesize',
      'sftTrain',
      'evaluate:sft',
      'filterPrompts',
      'rlEpoch:1',
      'refreshAnchor:1',
      'rlEpoch:2',
      'evaluate:final',
    ]);
    expect(filtered.rlInputs.map((i) => i.filter?.id)).toEqual([`${r.id}/prompt-filter`, `${r.id}/prompt-filter`]);
  });

  it('pause stops SFT at a boundary and resume reruns it; updates are validated, and an accepted one applies from the next epoch', async () => {
    let release!: () => void;
    const { calls, rlInputs, activities } = stubs({ sftGate: new Promise<void>((r) => (release = r)) });
    const result = await withWorkers(env, activities, async () => {
      const h = await start({ rl: { epochs: 2 } });
      await until('SFT to start', () => calls.includes('sftTrain'));
      await pauseCampaign(h);
      await until('the paused SFT to stop', async () => ((await h.describe()).raw.pendingActivities ?? []).length === 0);
      expect(await campaignStatus(h)).toMatchObject({ stage: 'sft', paused: true });
      release();

      const effective = await setHyperparameters(h, { 'rl.lr': 1e-4 });
      expect(effective.rl.lr).toBe(1e-4);
      await expect(setHyperparameters(h, { 'rl.lr': -1 })).rejects.toThrow(/rl\.lr/);
      await expect(setHyperparameters(h, { 'model.dModel': 8 })).rejects.toThrow(/model\.dModel/);
      expect((await campaignStatus(h)).nextConfig.rl.lr).toBe(1e-4);

      await resumeCampaign(h);
      return h.result();
    });
    expect(calls.filter((c) => c === 'sftTrain')).toHaveLength(2); // cancelled by the pause, then run again
    expect(rlInputs.map((i) => i.config.rl.lr)).toEqual([1e-4, 1e-4]);
    expect(result.configTimeline).toEqual([{ epoch: 1, changes: { 'rl.lr': 1e-4 } }]);
  });

  it('cancel ends the campaign as cancelled, recorded in its search attributes', async () => {
    const { calls, activities } = stubs({ sftGate: new Promise<void>(() => undefined) });
    await withWorkers(env, activities, async () => {
      const h = await start({});
      await until('SFT to start', () => calls.includes('sftTrain'));
      await h.cancel();
      const failure = await h.result().catch((e: unknown) => e);
      expect(failure).toBeInstanceOf(WorkflowFailedError);
      expect((failure as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
      expect((await h.describe()).searchAttributes).toMatchObject({ T1Stage: ['cancelled'] });
    });
    expect(calls).toEqual(['synthesize', 'sftTrain']);
  });

  it('continues as new after every epoch, carrying its state: each activity runs once, the result spans all runs', async () => {
    const { calls, activities } = stubs();
    const { result, runs } = await withWorkers(env, activities, async () => {
      const h = await start({ rl: { epochs: 3 }, eval: { scaling: { enabled: false } } }, { epochsPerRun: 1 });
      const result = await h.result();
      return { result, runs: (await campaignStatus(h)).runs };
    });
    expect(calls).toEqual([
      'synthesize',
      'sftTrain',
      'evaluate:sft',
      'rlEpoch:1',
      'refreshAnchor:1',
      'rlEpoch:2',
      'refreshAnchor:2',
      'rlEpoch:3',
      'evaluate:final',
    ]);
    expect(runs).toBe(3);
    expect(result.epochs.map((e) => e.epoch)).toEqual([1, 2, 3]);
    expect(result.anchorRefreshes.map((r) => r.epoch)).toEqual([1, 2]);
    expect(result.evals.map((e) => e.label)).toEqual(['sft', 'final']);
  });
});
