/**
 * Campaign-level numbers on the local stack:
 * - orchestration_overhead_fraction: (campaign wall time - the activities' own run time) / wall,
 *   from the workflow history of a quick-preset campaign (T1_BENCH_PRESET overrides the preset);
 * - quick_rl_gain_points: that campaign's reported gain (final minus SFT on its test problems, each
 *   at the setting its validation chose, paired, with the bootstrap CI): read, never chosen on;
 * - crash_detect_seconds / crash_steps_redone: a worker process killed with SIGKILL mid-RL (right
 *   after an intra-activity checkpoint), time until a new worker has the activity again, and the
 *   steps the retry computed a second time.
 */
import { intraId, rlRun } from '../rules/checkpoints';
import type { Client } from '@temporalio/client';
import { startCampaign, type CampaignHandle } from '../client/campaigns';
import { loadConnection, loadStack } from '../config/connection';
import { resolveConfig } from '../config/presets';
import { stackUp } from '../infra/stack';
import { connectClient } from '../infra/temporal';
import { CheckpointStore } from '../storage/checkpoints';
import type { Bench } from './metric';
import { spawnWorker } from './worker';

const tsOf = (t: { seconds?: unknown; nanos?: number | null } | null | undefined) => Number(t?.seconds ?? 0) * 1000 + (t?.nanos ?? 0) / 1e6;

async function runCampaign(client: Client, id: string, preset: string, overrides?: Record<string, unknown>): Promise<CampaignHandle> {
  const config = resolveConfig({ preset, overrides });
  return startCampaign(client, { campaignId: id, config, preset });
}

export const campaignBench: Bench = {
  metrics: ['orchestration_overhead_fraction', 'quick_rl_gain_points', 'crash_detect_seconds', 'crash_steps_redone'],
  async run(emit) {
    await stackUp(loadStack(), (l) => console.error(`[stack] ${l}`));
    const conn = loadConnection();
    const client = await connectClient(conn.temporal);
    const store = new CheckpointStore(conn.s3);
    let worker = await spawnWorker();
    try {
      const preset = process.env.T1_BENCH_PRESET ?? 'quick';
      const id = `bench-${Date.now().toString(36)}`;
      console.error(`[bench] ${preset} campaign ${id} …`);
      const h = await runCampaign(client, id, preset);
      const result = await h.result();
      const history = await h.fetchHistory();
      const events = history.events!;
      const wall = tsOf(events[events.length - 1].eventTime) - tsOf(events[0].eventTime);
      // Time covered by at least one running activity (scaling points may overlap on several workers).
      const started = new Map<string, number>();
      const spans: [number, number][] = [];
      for (const e of events) {
        if (e.activityTaskStartedEventAttributes)
          started.set(String(e.activityTaskStartedEventAttributes.scheduledEventId), tsOf(e.eventTime));
        const done = e.activityTaskCompletedEventAttributes;
        if (done) spans.push([started.get(String(done.scheduledEventId))!, tsOf(e.eventTime)]);
      }
      spans.sort((a, b) => a[0] - b[0]);
      let busy = 0;
      let end = -Infinity;
      for (const [a, b] of spans) {
        busy += Math.max(0, b - Math.max(a, end));
        end = Math.max(end, b);
      }
      emit({
        metric: 'orchestration_overhead_fraction',
        value: Math.round(((wall - busy) / wall) * 1e4) / 1e4,
        unit: 'fraction',
        target: 0.02,
        preset,
        wall_s: wall / 1000,
        activities_s: busy / 1000,
      });
      const gain = result.results.gain?.passAt1;
      emit({
        metric: 'quick_rl_gain_points',
        value: gain ? Math.round(gain.diff * 1e4) / 100 : NaN,
        unit: 'points',
        preset,
        ci95: gain && gain.lo !== null && gain.hi !== null ? [Math.round(gain.lo * 1e4) / 100, Math.round(gain.hi * 1e4) / 100] : null,
        settings: gain?.settings ?? null,
        problems: result.results.gain?.problems ?? null,
      });

      // Crash: kill the worker right after the first RL intra checkpoint of epoch 1 is committed.
      const cid = `bench-crash-${Date.now().toString(36)}`;
      const every = 4;
      const ch = await runCampaign(client, cid, 'smoke', {
        sft: { steps: 40 },
        rl: { epochs: 1, stepsPerEpoch: 3 * every },
        checkpoints: { rlEvery: every },
      });
      const intra = intraId(cid, rlRun(1), every);
      while (!(await store.manifest(intra))) await new Promise((r) => setTimeout(r, 50));
      worker.kill('SIGKILL');
      const killedAt = Date.now();
      worker = await spawnWorker();
      // Detected when the activity runs again (attempt 2 started on the new worker).
      for (;;) {
        const pending = (await ch.describe()).raw.pendingActivities ?? [];
        if (pending.some((p) => p.activityType?.name === 'rlEpoch' && (p.attempt ?? 1) > 1 && p.state === 2 /* STARTED */)) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      const detect = (Date.now() - killedAt) / 1000;
      const crashed = await ch.result();
      const epoch = crashed.epochs[0];
      emit({ metric: 'crash_detect_seconds', value: Math.round(detect * 100) / 100, unit: 's', heartbeat_timeout_s: 20 });
      // The kill lands right after step `every` was committed (a lower bound on the steps done by then).
      emit({
        metric: 'crash_steps_redone',
        value: every - epoch.resumedFromStep,
        unit: 'steps',
        killed_after_step: every,
        resumed_from_step: epoch.resumedFromStep,
        checkpoint_every: every,
      });
    } finally {
      worker.kill('SIGKILL');
      store.close();
      await client.connection.close();
    }
  },
};
