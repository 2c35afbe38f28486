/**
 * Durability against real failures: the S3 server down for 20 s while checkpoints are being
 * committed; and, in one campaign on versioned workers, a worker killed with SIGKILL during SFT, a
 * rolling upgrade to another build mid-RL and that build's worker killed in the next epoch. The
 * campaigns complete, and (same seed) the disturbed one's checkpoints are bit-identical to an
 * uninterrupted run's.
 */
import type { WorkflowHandle } from '@temporalio/client';
import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../../config/presets';
import { startService, stopService } from '../../infra/stack';
import { campaignStatus, startCampaign, type CampaignHandle } from '../../client/campaigns';
import type { CampaignResult } from '../../contracts/campaign';
import { makeCurrent } from '../../workers/build';
import { killHard, spawnWorker, testStack, uniqueCampaign, useClientAndStore, waitFor } from './helpers';

const { client, store } = useClientAndStore();

// Big enough that a step takes a noticeable time, small enough for CI.
const overrides = {
  seed: 11,
  model: { contextLength: 160, dModel: 64, nLayers: 2, nHeads: 2, dFF: 128 },
  sft: { steps: 120, batchSize: 16 },
  rl: { epochs: 2, stepsPerEpoch: 10, promptsPerStep: 2, samplesPerPrompt: 4, maxNewTokens: 64 },
  checkpoints: { sftEvery: 5, rlEvery: 2 },
};

function start(id: string): Promise<CampaignHandle> {
  const config = resolveConfig({ preset: 'smoke', overrides });
  return startCampaign(client(), { campaignId: id, config, preset: 'smoke' });
}

/** The running activity's name and heartbeated step, if any. */
async function progress(h: WorkflowHandle): Promise<{ activity: string; step: number } | undefined> {
  const d = await h.describe();
  for (const p of d.raw.pendingActivities ?? []) {
    const payload = p.heartbeatDetails?.payloads?.[0];
    if (!payload?.data) continue;
    const details = JSON.parse(Buffer.from(payload.data).toString('utf8'));
    return { activity: p.activityType!.name!, step: details.step };
  }
  return undefined;
}

/** The uninterrupted run the disturbed one must equal, on a worker of its own. */
async function uninterrupted(): Promise<CampaignResult> {
  const own = spawnWorker();
  try {
    return (await (await start(uniqueCampaign('ref'))).result()) as CampaignResult;
  } finally {
    await killHard(own);
  }
}

describe('crash recovery (worker processes killed with SIGKILL)', () => {
  it('kill -9 during SFT and during RL, and a rolling upgrade from build A to build B mid-RL: the campaign ends on the uninterrupted run’s bits', async () => {
    const refResult = await uninterrupted();
    const t0 = Date.now();
    const log = (m: string) => console.log(`[crash +${((Date.now() - t0) / 1000).toFixed(1)}s] ${m}`);
    const deployment = `t1-test-${process.pid}-${Date.now().toString(36)}`;
    const versioned = (build: string, ...args: string[]) =>
      spawnWorker('all', { T1_WORKER_DEPLOYMENT: deployment, T1_BUILD_ID: build }, args);
    // Both builds start at once (B as a new Deployment's pods would, Ready but not yet current).
    let a = versioned('build-a', '--make-current');
    let b = versioned('build-b');
    try {
      await waitFor('build-a to be current', async () => a.output().includes('build-a is now the current version'), 120_000);
      await waitFor('build-b to poll', async () => b.output().includes('[worker] role all'), 120_000);
      expect(a.output()).toContain(`build build-a of deployment ${deployment}`);
      const id = uniqueCampaign('crash');
      const h = await start(id);
      // Heartbeats reach the server throttled; the committed intra checkpoints show progress at once.
      await waitFor('SFT past its first intra checkpoint', async () => !!(await store.manifest(`${id}/sft-s000005`)), 180_000, 50);
      await killHard(a);
      log('killed build A’s worker during SFT');
      const killedAt = Date.now();
      a = versioned('build-a');
      await waitFor('RL past its first intra checkpoint', async () => !!(await store.manifest(`${id}/rl-e0001-s000002`)), 180_000, 50);
      const detectSeconds = (Date.now() - killedAt) / 1000; // kill during SFT -> the retried SFT finished and RL ran
      expect(await store.manifest(`${id}/rl-e0001`)).toBeUndefined(); // the upgrade lands inside the epoch
      const before = (await h.describe()).raw.workflowExecutionInfo!.versioningInfo!;
      expect(before.deploymentVersion).toMatchObject({ deploymentName: deployment, buildId: 'build-a' });
      expect(String(before.behavior)).toMatch(/AUTO_UPGRADE|^2$/);
      // The rolling upgrade: B becomes current, then A is stopped as Kubernetes stops a pod (SIGTERM:
      // its running step is checkpointed and handed over).
      await makeCurrent(client(), 'default', { deployment, buildId: 'build-b' });
      a.kill('SIGTERM');
      log('build B current, build A stopped (SIGTERM) during RL epoch 1');
      await waitFor(
        'RL epoch 2 past its first intra checkpoint',
        async () => !!(await store.manifest(`${id}/rl-e0002-s000002`)),
        180_000,
        50,
      );
      expect(await store.manifest(`${id}/rl-e0002`)).toBeUndefined();
      await killHard(b);
      log('killed build B’s worker during RL epoch 2');
      b = versioned('build-b');
      const result = (await h.result()) as CampaignResult;
      log('campaign completed');
      expect(result.checkpoints.final.sha256).toBe(refResult.checkpoints.final.sha256);
      expect(result.checkpoints.sft.sha256).toBe(refResult.checkpoints.sft.sha256);
      const after = (await h.describe()).raw.workflowExecutionInfo!.versioningInfo!;
      expect(after.deploymentVersion).toMatchObject({ deploymentName: deployment, buildId: 'build-b' });
      // Same checkpoints, same evaluation config: every inference-scaling point comes from the S3 cache,
      // without loading a model or generating a token, and equals the reference's.
      expect(refResult.scaling.every((p) => !p.cached)).toBe(true);
      expect(result.scaling.length).toBe(refResult.scaling.length);
      expect(result.scaling.every((p) => p.cached)).toBe(true);
      expect(result.scaling.map((p) => p.accuracy)).toEqual(refResult.scaling.map((p) => p.accuracy));
      // Retries resumed from intra-activity checkpoints instead of starting over.
      const st = await campaignStatus(h);
      expect(st.sft!.resumedFromStep).toBeGreaterThanOrEqual(5);
      expect(st.epochs[1].resumedFromStep).toBeGreaterThanOrEqual(2);
      // The heartbeat timeout handed the SFT activity to the new worker well within a minute.
      expect(detectSeconds).toBeLessThan(90);
    } finally {
      await killHard(a);
      await killHard(b);
      // The task queues back to unversioned workers, which the other tests run.
      await client().workflowService.setWorkerDeploymentCurrentVersion({ namespace: 'default', deploymentName: deployment, buildId: '' });
    }
  }, 600_000);

  it('S3 down for 20 s during checkpoint commits: activities retry, nothing half-written becomes visible, the campaign completes', async () => {
    const worker = spawnWorker();
    try {
      const id = uniqueCampaign('s3down');
      const h = await start(id);
      await waitFor('SFT to start', async () => (await progress(h))?.activity === 'sftTrain', 180_000, 50);
      await stopService(testStack(), 's3');
      await new Promise((r) => setTimeout(r, 20_000));
      await startService(testStack(), 's3');
      const result = (await h.result()) as CampaignResult;
      expect(result.status).toBe('completed');
      // Every visible checkpoint of the campaign is complete and verifies.
      const ms = await store.list({ campaign: id });
      expect(ms.length).toBeGreaterThan(3);
      for (const m of ms) expect((await store.verify(m.id)).ok).toBe(true);
    } finally {
      await killHard(worker);
    }
  }, 300_000);
});
