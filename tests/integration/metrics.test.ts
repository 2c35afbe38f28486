/**
 * Metrics and the tracker against the real stack: a `t1 worker --metrics-port` process runs a
 * smoke-sized campaign; Prometheus-style scrapes of its /metrics during SFT show t1's training
 * metrics and the Temporal SDK's; after the campaign, its TensorBoard event files in S3 parse back
 * to the curves its checkpoints recorded, and the report points to them.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { afterAll, describe, expect, it, onTestFailed } from 'vitest';
import { startCampaign } from '../../client/campaigns';
import { resolveConfig } from '../../config/presets';
import { writeCampaignReport } from '../../cli/commands/report';
import { decodeEventFile, tensorboardPrefix, tensorboardUrl } from '../../storage/tensorboard';
import { freePort } from '../helpers/free-port';
import { killHard, spawnWorker, testConnection, uniqueCampaign, useClientAndStore, waitFor } from './helpers';

type Sample = { name: string; labels: Record<string, string>; value: number };
function parse(text: string): Sample[] {
  return text
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(l)!;
      return {
        name: m[1],
        labels: Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]])),
        value: Number(m[3]),
      };
    });
}

const { client, store } = useClientAndStore();
const conn = testConnection();
let worker: ReturnType<typeof spawnWorker> | undefined;
afterAll(async () => {
  if (worker) await killHard(worker);
});

describe('worker metrics and TensorBoard logs (real Temporal + S3)', () => {
  it('a scrape during SFT returns the training metrics; the event files parse back to the logged curves', async () => {
    onTestFailed(() => console.error(`worker output:\n${worker?.output().slice(-6000)}`));
    const port = await freePort();
    worker = spawnWorker('all', { T1_METRICS_PORT: String(port) });
    const scrape = async () => {
      try {
        return parse(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text());
      } catch {
        return undefined; // not up yet
      }
    };
    await waitFor('the metrics endpoint', scrape, 180_000);

    // Smoke-sized, with SFT long enough to be caught running (smoke's 12 steps take well under a second).
    const id = uniqueCampaign('metrics');
    const config = resolveConfig({
      preset: 'smoke',
      overrides: { sft: { steps: 60, evalEvery: 60 }, checkpoints: { sftEvery: 20 } },
    });
    const handle = await startCampaign(client(), { campaignId: id, config, preset: 'smoke' });
    const sftLabels = { campaign: id, activity: 'sftTrain', task_queue: 't1-gpu' };
    const of = (s: Sample[], name: string, labels: Record<string, string> = sftLabels) =>
      s.find((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v))?.value;

    // Scraped while SFT runs: some steps done, not all.
    const during = await waitFor(
      'a scrape during SFT with step metrics',
      async () => {
        const s = await scrape();
        const step = s && of(s, 't1_step');
        return s && step !== undefined && step >= 2 && step < 60 && s;
      },
      180_000,
      50,
    );
    const count = of(during, 't1_step_seconds_count')!;
    const sum = of(during, 't1_step_seconds_sum')!;
    expect(of(during, 't1_steps_planned')).toBe(60);
    expect(count).toBeGreaterThanOrEqual(1);
    expect(sum / count).toBeGreaterThan(0);
    expect(sum / count).toBeLessThan(30);
    expect(of(during, 't1_tokens_per_second')).toBeGreaterThan(0);
    const loss = of(during, 't1_train_loss')!;
    expect(loss).toBeGreaterThan(0);
    expect(loss).toBeLessThan(10); // cross-entropy over a small alphabet, in nats/token
    expect(of(during, 't1_learning_rate')).toBeGreaterThan(0);
    // The SDK's runtime metrics from the same endpoint: this worker's pollers and slots on its queues.
    expect(during.some((x) => x.name.startsWith('temporal_') && x.labels.task_queue === 't1-gpu')).toBe(true);
    expect(during.some((x) => x.name === 'temporal_worker_task_slots_available')).toBe(true);

    const result = await handle.result();
    expect(result.status).toBe('completed');

    // After: SFT's checkpoint bytes, and RL's reward, KL and entropy.
    const after = (await scrape())!;
    expect(of(after, 't1_checkpoint_bytes')).toBeGreaterThan(1000);
    const rlLabels = { campaign: id, activity: 'rlEpoch', task_queue: 't1-gpu' };
    for (const name of ['t1_reward', 't1_kl', 't1_entropy', 't1_tokens_per_second']) expect(of(after, name, rlLabels), name).toBeDefined();
    expect(of(after, 't1_step', rlLabels)).toBe(2);

    // The event files: each run's steps exactly once, with the values the checkpoints' curves hold.
    const listed = await store.client.send(new ListObjectsV2Command({ Bucket: store.bucket, Prefix: tensorboardPrefix(id) }));
    const keys = (listed.Contents ?? []).map((o) => o.Key!).sort();
    const events = async (run: string) => {
      const parts = keys.filter((k) => k.startsWith(`${tensorboardPrefix(id)}${run}/events.out.tfevents.`));
      const all = [];
      for (const k of parts) all.push(...decodeEventFile((await store.getObject(k))!.bytes).slice(1));
      return { parts, all };
    };
    const sft = await events('sft');
    // A part before each checkpoint (steps 20 and 40) and one at the end.
    expect(sft.parts.map((k) => k.split('tfevents.')[1])).toEqual([
      '000000001-000000020.t1',
      '000000021-000000040.t1',
      '000000041-000000060.t1',
    ]);
    expect(sft.all.map((e) => e.step)).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
    const curve = (await store.manifest(`${id}/sft`))!.meta.curve as { step: number; loss: number; valLoss?: number }[];
    expect(curve).toHaveLength(60); // a point per step at this length
    for (const p of curve) expect(sft.all[p.step - 1].values.loss, `step ${p.step}`).toBe(Math.fround(p.loss));
    expect(sft.all[59].values.val_loss).toBe(Math.fround(curve[59].valLoss!));
    for (const e of sft.all) {
      expect(e.values.step_seconds).toBeGreaterThan(0);
      expect(e.values.tokens_per_s).toBeGreaterThan(0);
    }

    const rl = await events('rl');
    expect(rl.all.map((e) => e.step)).toEqual([1, 2, 3, 4]); // two epochs of two steps, counted across epochs
    const rlCurve = [
      ...((await store.manifest(`${id}/rl-e0001`))!.meta.curve as { reward: number; kl: number; entropy: number }[]),
      ...((await store.manifest(`${id}/rl-e0002`))!.meta.curve as { reward: number; kl: number; entropy: number }[]),
    ];
    rl.all.forEach((e, i) => {
      expect(e.values.reward).toBe(Math.fround(rlCurve[i].reward));
      expect(e.values.entropy).toBe(Math.fround(rlCurve[i].entropy));
      if (Number.isFinite(rlCurve[i].kl)) expect(e.values.kl).toBe(Math.fround(rlCurve[i].kl));
    });

    // The report says where the logs are.
    const out = mkdtempSync(join(tmpdir(), 't1-report-'));
    try {
      const page = readFileSync(await writeCampaignReport(conn, client(), id, out), 'utf8');
      expect(page).toContain(tensorboardUrl(conn.s3.bucket, id));
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
