/**
 * RL rollouts on rollout workers (rl.rollout.mode workers) against the real servers: the final
 * checkpoint is the same bits as the in-process path whatever the shard size and the number of
 * rollout workers (or of the trainer's sampler processes), a rollout worker killed mid-shard loses
 * nothing, and workers started mid-campaign take shards.
 */
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { temporal } from '@temporalio/proto';
import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../../config/presets';
import { startCampaign } from '../../client/campaigns';
import type { RolloutStepInput } from '../../contracts/rollout';
import { ROLLOUTS_PREFIX } from '../../storage/checkpoints';
import { weightsKey } from '../../storage/weights';
import type { CampaignResult } from '../../contracts/campaign';
import { killHard, spawnWorker, uniqueCampaign, useClientAndStore, waitFor } from './helpers';

const { client, store } = useClientAndStore();

const { PENDING_ACTIVITY_STATE_STARTED } = temporal.api.enums.v1.PendingActivityState;

// 4 prompts x 16 samples a step, one sampler call per prompt: shards of 1 or 2 prompts are whole calls.
// Flat groups are kept, so every step updates the policy from its samples (the smoke model solves nothing).
function run(id: string, rollout: { mode: 'local' | 'workers'; shardPrompts: number; processes?: number }): Promise<CampaignResult> {
  const config = resolveConfig({
    preset: 'smoke',
    overrides: {
      seed: 5,
      rl: { epochs: 2, stepsPerEpoch: 3, promptsPerStep: 4, samplesPerPrompt: 16, sampleBatch: 16, dropZeroVariance: false, rollout },
      eval: { scaling: { enabled: false } },
    },
  });
  return startCampaign(client(), { campaignId: id, config, preset: 'smoke' }).then((h) => h.result() as Promise<CampaignResult>);
}

/** The campaign's rollout workflows (one per RL step). */
async function rolloutRuns(campaignId: string, status?: 'Running') {
  const out = [];
  const query = `WorkflowType='rolloutWorkflow'${status ? ` AND ExecutionStatus='${status}'` : ''}`;
  for await (const w of client().workflow.list({ query })) if (w.workflowId.startsWith(`${campaignId}-rollouts-`)) out.push(w.workflowId);
  return out;
}

/** Who ran each shard attempt: [identity, attempt] of every ActivityTaskStarted in the campaign's rollout workflows. */
async function shardAttempts(campaignId: string): Promise<{ identity: string; attempt: number }[]> {
  const out = [];
  for (const id of await rolloutRuns(campaignId)) {
    const history = await client().workflow.getHandle(id).fetchHistory();
    for (const e of history.events ?? [])
      if (e.activityTaskStartedEventAttributes)
        out.push({ identity: e.activityTaskStartedEventAttributes.identity!, attempt: e.activityTaskStartedEventAttributes.attempt! });
  }
  return out;
}

const pidOf = (identity: string) => Number(identity.split('@')[0]);

/** The weights each RL step published (from its rollout workflow's input). */
async function stepWeights(campaignId: string): Promise<Set<string>> {
  const out = new Set<string>();
  for (const id of await rolloutRuns(campaignId)) {
    const history = await client().workflow.getHandle(id).fetchHistory();
    const payload = history.events![0].workflowExecutionStartedEventAttributes!.input!.payloads![0];
    out.add((JSON.parse(Buffer.from(payload.data!).toString('utf8')) as RolloutStepInput).weights.sha256);
  }
  return out;
}

describe('rollout workers', () => {
  it('2 sampler processes, 1 and 3 rollout workers, a worker killed mid-shard and workers joining mid-campaign: the same final checkpoint as in-process sampling', async () => {
    const trainer = spawnWorker('gpu,cpu,eval');
    const first = spawnWorker('rollout');
    const joined: ReturnType<typeof spawnWorker>[] = [];
    try {
      const localId = uniqueCampaign('ro-local');
      const local = await run(localId, { mode: 'local', shardPrompts: 1 });
      expect(await shardAttempts(localId)).toEqual([]);

      // The trainer's own sampler processes (local mode), 2 of them over the step's 4 shards.
      const pooled = await run(uniqueCampaign('ro-pool'), { mode: 'local', shardPrompts: 1, processes: 2 });
      expect(pooled.checkpoints.final.sha256).toBe(local.checkpoints.final.sha256);
      expect(trainer.output()).toMatch(/sampler processes started: \d+, \d+ \(/);

      // One rollout worker, shards of 2 prompts.
      const oneId = uniqueCampaign('ro-one');
      const one = await run(oneId, { mode: 'workers', shardPrompts: 2 });
      expect(one.checkpoints.final.sha256).toBe(local.checkpoints.final.sha256);
      const oneAttempts = await shardAttempts(oneId);
      expect(oneAttempts).toHaveLength(6 * 2); // 6 steps x 2 shards, none retried
      expect(new Set(oneAttempts.map((a) => pidOf(a.identity)))).toEqual(new Set([first.pid]));

      // Shards of 1 prompt; the one rollout worker is killed while it holds a shard, three others start.
      const id = uniqueCampaign('ro-kill');
      const done = run(id, { mode: 'workers', shardPrompts: 1 });
      for (;;) {
        // Freeze the worker while the server sees it holding a shard; kill it if it still does (else let it go on).
        const held = await waitFor('a shard held by the first rollout worker', () => heldShard(id, first.pid!), 180_000, 20);
        first.kill('SIGSTOP');
        await new Promise((r) => setTimeout(r, 300));
        if (await stillHeld(held, first.pid!)) break;
        first.kill('SIGCONT');
      }
      await killHard(first);
      for (let i = 0; i < 3; i++) joined.push(spawnWorker('rollout'));
      const killed = await done;
      expect(killed.status).toBe('completed');
      expect(killed.checkpoints.final.sha256).toBe(local.checkpoints.final.sha256);

      const attempts = await shardAttempts(id);
      // History keeps each shard's last attempt: 6 steps x 4 shards, the held one finished by attempt 2 on another worker.
      expect(attempts).toHaveLength(6 * 4);
      const retried = attempts.filter((a) => a.attempt > 1);
      expect(retried).toHaveLength(1);
      expect(pidOf(retried[0].identity)).not.toBe(first.pid);
      const joinedPids = new Set(joined.map((w) => w.pid));
      expect(new Set(attempts.map((a) => pidOf(a.identity)).filter((p) => joinedPids.has(p))).size).toBeGreaterThanOrEqual(2);
      // Published weights and stored shards are removed once a step has gathered them.
      const listed = await store.client.send(new ListObjectsV2Command({ Bucket: store.bucket, Prefix: `${ROLLOUTS_PREFIX}/` }));
      expect(listed.KeyCount).toBe(0);
      const published = await stepWeights(id);
      expect(published.size).toBe(6); // a new policy every step
      for (const sha of published) expect(await store.getObject(weightsKey({ sha256: sha }))).toBeUndefined();
    } finally {
      await Promise.all([trainer, first, ...joined].map(killHard));
    }
  }, 600_000);
});

/** A running rollout workflow of the campaign with a shard started by worker `pid`. */
async function heldShard(campaignId: string, pid: number): Promise<{ workflowId: string; activityId: string } | undefined> {
  for (const workflowId of await rolloutRuns(campaignId, 'Running')) {
    const d = await client().workflow.getHandle(workflowId).describe();
    const a = (d.raw.pendingActivities ?? []).find(
      (p) => p.state === PENDING_ACTIVITY_STATE_STARTED && pidOf(p.lastWorkerIdentity ?? '') === pid,
    );
    if (a) return { workflowId, activityId: a.activityId! };
  }
  return undefined;
}

async function stillHeld(held: { workflowId: string; activityId: string }, pid: number): Promise<boolean> {
  const d = await client().workflow.getHandle(held.workflowId).describe();
  return (d.raw.pendingActivities ?? []).some(
    (p) => p.activityId === held.activityId && p.state === PENDING_ACTIVITY_STATE_STARTED && pidOf(p.lastWorkerIdentity ?? '') === pid,
  );
}
