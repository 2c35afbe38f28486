/**
 * The worker's metrics endpoint (workers/metrics.ts) as Prometheus scrapes it: heartbeats as the step
 * loop sends them become t1's series (negative rewards included, which the SDK's own gauges refuse),
 * served over HTTP with the Temporal SDK core's exporter (a real runtime in this test's process, on a
 * loopback port; no server needed) appended; and the compute pool handing each child heartbeat,
 * with its call, to the observer.
 */
import { fileURLToPath } from 'node:url';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { NO_GRANTS } from '../../../util/grants';
import { ConfigError } from '../../../util/errors';
import { ComputePool } from '../../../workers/compute';
import { metricsPort, MetricsServer, PROGRESS_GAUGES, Registry, TrainingMetrics, type ActivityCall } from '../../../workers/metrics';
import { freePort } from '../../helpers/free-port';

/** `name{labels} value` lines of a scrape, as [name, labels, value]. */
function samples(text: string): [string, Record<string, string>, number][] {
  return text
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(l)!;
      const labels = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]));
      return [m[1], labels, Number(m[3])];
    });
}

const sft: ActivityCall = { activity: 'sftTrain', input: { campaignId: 'c-sft', config: {} }, taskQueue: 't1-gpu' };
const rl: ActivityCall = { activity: 'rlEpoch', input: { campaignId: 'c-rl', epoch: 1 }, taskQueue: 't1-gpu' };
const labels = (c: ActivityCall) => ({
  campaign: (c.input as { campaignId: string }).campaignId,
  activity: c.activity,
  task_queue: c.taskQueue,
});

let server: MetricsServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

describe('the metrics endpoint', () => {
  it("serves the step loop's heartbeats: step, step seconds, tokens/s, loss, RL reward/KL/entropy, checkpoint bytes", async () => {
    const metrics = new TrainingMetrics();
    // What activities/resumable.ts heartbeats: the start (no step metrics), then each step.
    metrics.observe(sft, { step: 0, total: 12 });
    metrics.observe(sft, { step: 1, total: 12, progress: { loss: 3.5, lr: 0.001, tokensPerS: 900 }, stepSeconds: 0.2 });
    metrics.observe(sft, {
      step: 2,
      total: 12,
      checkpoint: 'c-sft/sft-s000002',
      progress: { loss: 3.25, lr: 0.002, tokensPerS: 1000, valLoss: NaN },
      stepSeconds: 0.4,
      checkpointBytes: 123456,
    });
    metrics.observe(rl, {
      step: 1,
      total: 2,
      progress: { reward: -0.5, accuracy: 0.25, kl: 0.01, entropy: 1.5, garbage: 0, tokensPerS: 50 },
    });
    metrics.observe(rl, { started: 'not a step loop' });
    server = await MetricsServer.start(0, { registry: metrics.registry, host: '127.0.0.1' });
    const res = await fetch(`http://127.0.0.1:${server.port}/metrics`);
    expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    const text = await res.text();
    expect(text).toContain('# TYPE t1_step_seconds histogram\n');
    expect(text).toContain('# TYPE t1_reward gauge\n');
    const s = samples(text);
    const value = (name: string, c: ActivityCall) =>
      s.find(([n, l]) => n === name && Object.entries(labels(c)).every(([k, v]) => l[k] === v))?.[2];
    expect(value('t1_step', sft)).toBe(2);
    expect(value('t1_steps_planned', sft)).toBe(12);
    expect(value('t1_train_loss', sft)).toBe(3.25);
    expect(value('t1_tokens_per_second', sft)).toBe(1000);
    expect(value('t1_learning_rate', sft)).toBe(0.002);
    expect(value('t1_checkpoint_bytes', sft)).toBe(123456);
    expect(value('t1_step_seconds_count', sft)).toBe(2);
    expect(value('t1_step_seconds_sum', sft)).toBeCloseTo(0.6, 12);
    // Buckets in seconds, cumulative: both steps under 0.5 s, one under 0.25 s.
    const bucket = (le: string) => s.find(([n, l]) => n === 't1_step_seconds_bucket' && l.le === le && l.campaign === 'c-sft')?.[2];
    expect([bucket('0.1'), bucket('0.25'), bucket('0.5'), bucket('+Inf')]).toEqual([0, 1, 2, 2]);
    expect(s.some(([n, l]) => n === 't1_val_loss' && l.campaign === 'c-sft')).toBe(false); // NaN: not set
    expect(value('t1_reward', rl)).toBe(-0.5);
    expect(value('t1_kl', rl)).toBe(0.01);
    expect(value('t1_entropy', rl)).toBe(1.5);
    expect(value('t1_sample_accuracy', rl)).toBe(0.25);
    expect(value('t1_garbage_rate', rl)).toBe(0);
    expect(value('t1_tokens_per_second', rl)).toBe(50);
    const names = new Set(s.map(([n]) => n));
    for (const { name } of Object.values(PROGRESS_GAUGES).filter((g) => g.name !== 't1_val_loss' && g.name !== 't1_val_accuracy'))
      expect(names, name).toContain(name);
    expect((await fetch(`http://127.0.0.1:${server.port}/other`)).status).toBe(404);
  });

  it('escapes label values and help text as the text format asks', () => {
    const r = new Registry();
    r.gauge('g', 'a "help"')(1, { campaign: 'a"b\\c\nd' });
    expect(r.render()).toBe('# HELP g a "help"\n# TYPE g gauge\ng{campaign="a\\"b\\\\c\\nd"} 1\n');
  });

  it("appends the Temporal SDK core's exporter to each scrape, and still answers when it does not", async () => {
    const sdkPort = await freePort();
    Runtime.install({
      logger: new DefaultLogger('WARN'),
      telemetryOptions: { metrics: { prometheus: { bindAddress: `127.0.0.1:${sdkPort}` } } },
    });
    Runtime.instance().metricMeter.createCounter('temporal_probe').add(3);
    const metrics = new TrainingMetrics();
    metrics.observe(rl, { step: 1, progress: { reward: -1 } });
    server = await MetricsServer.start(0, { registry: metrics.registry, sdk: `http://127.0.0.1:${sdkPort}/metrics`, host: '127.0.0.1' });
    const both = samples(await (await fetch(`http://127.0.0.1:${server.port}/metrics`)).text());
    expect(both.find(([n]) => n === 't1_reward')?.[2]).toBe(-1);
    expect(both.find(([n]) => n === 'temporal_probe')?.[2]).toBe(3);

    const closed = await freePort();
    const alone = await MetricsServer.start(0, {
      registry: metrics.registry,
      sdk: `http://127.0.0.1:${closed}/metrics`,
      host: '127.0.0.1',
    });
    try {
      const text = await (await fetch(`http://127.0.0.1:${alone.port}/metrics`)).text();
      expect(samples(text).find(([n]) => n === 't1_reward')?.[2]).toBe(-1);
      expect(text).toMatch(/^# the Temporal SDK's metrics: .+$/m);
    } finally {
      await alone.close();
    }
  });
});

describe('ComputePool', () => {
  const pool = new ComputePool(
    { s3: {} as never, temporal: {} as never },
    NO_GRANTS,
    fileURLToPath(new URL('./stand-in-child.ts', import.meta.url)),
    (call, details) => seen.push({ call, details }),
  );
  const seen: { call: ActivityCall; details: unknown }[] = [];
  afterAll(() => pool.close());

  it('hands each heartbeat a child sends to the observer, with the call it belongs to', async () => {
    const { activities } = await pool.start();
    const env = new MockActivityEnvironment({ heartbeatTimeoutMs: 2000, taskQueue: 't1-gpu' });
    await env.run(() => (activities as unknown as Record<string, (i: unknown) => Promise<unknown>>).wait({ ms: 600 }));
    // The stand-in heartbeats once; the worker's own repeats of it (every 400 ms here) are not the child's.
    expect(seen).toEqual([{ call: { activity: 'wait', input: { ms: 600 }, taskQueue: 't1-gpu' }, details: { started: 'wait' } }]);
  });
});

describe('metricsPort', () => {
  it('reads --metrics-port, else T1_METRICS_PORT; refuses what is not a port', () => {
    expect(metricsPort(undefined, {})).toBeUndefined();
    expect(metricsPort(undefined, { T1_METRICS_PORT: ' ' })).toBeUndefined();
    expect(metricsPort(undefined, { T1_METRICS_PORT: '9464' })).toBe(9464);
    expect(metricsPort('9100', { T1_METRICS_PORT: '9464' })).toBe(9100);
    expect(() => metricsPort('70000', {})).toThrow(ConfigError);
    expect(() => metricsPort(undefined, { T1_METRICS_PORT: 'x' })).toThrow(/T1_METRICS_PORT: expected a port/);
  });
});
