/**
 * The worker's Prometheus endpoint: `t1 worker --metrics-port N` (or T1_METRICS_PORT) serves
 * `GET /metrics` on port N with two parts, one scrape target per worker:
 *
 * - t1's training metrics (`t1_*`), kept here. Training runs in compute processes
 *   (workers/compute.ts); their heartbeats reach this process with the step loop's details
 *   (activities/resumable.ts): the step, the step's seconds, the bytes of a checkpoint just
 *   committed and the step's metrics. `TrainingMetrics.observe` turns each into gauges and a
 *   histogram labelled `campaign`, `activity` (sftTrain, rlEpoch) and `task_queue`. Gauges hold the
 *   last value seen (a finished activity's stay until the worker restarts).
 * - The Temporal SDK's runtime metrics (`temporal_*`: pollers, task slots, task latencies), which
 *   its core serves from its own Prometheus exporter, bound to a loopback port (workers/worker.ts
 *   `serveMetrics`) and appended to each scrape. t1's metrics do not go through the SDK's metric
 *   meter: its gauges refuse negative values, and rewards go below zero.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { Endpoint, listen, portSetting } from './health';

/** Step metrics (keys of a heartbeat's `progress`) and their gauges; other keys are not exported. */
export const PROGRESS_GAUGES: Record<string, { name: string; help: string }> = {
  loss: { name: 't1_train_loss', help: 'SFT: cross-entropy of the last step (nats/token)' },
  lr: { name: 't1_learning_rate', help: 'SFT: learning rate of the last step' },
  tokensPerS: {
    name: 't1_tokens_per_second',
    help: 'SFT: trained tokens/s since the activity started; RL: sampled tokens/s of the last step',
  },
  valLoss: { name: 't1_val_loss', help: 'SFT: validation cross-entropy at the last evaluation (nats/token)' },
  valAccuracy: { name: 't1_val_accuracy', help: 'SFT: validation pass@1 (greedy) at the last evaluation' },
  reward: { name: 't1_reward', help: 'RL: mean reward of the last step' },
  accuracy: { name: 't1_sample_accuracy', help: "RL: share of the last step's samples that are correct" },
  kl: { name: 't1_kl', help: 'RL: KL to the anchor of the last step (nats per response)' },
  entropy: { name: 't1_entropy', help: 'RL: policy entropy of the last step (nats per token)' },
  garbage: { name: 't1_garbage_rate', help: "RL: share of the last step's samples that are malformed" },
};

/** Buckets of `t1_step_seconds`: from a smoke model's steps to a large model's on a CPU. */
export const STEP_SECONDS_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];

type Labels = Record<string, string>;
// The text format escapes backslash and newline in HELP text, and the double quote too in label values.
const escapeHelp = (v: string) => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
const escape = (v: string) => escapeHelp(v).replace(/"/g, '\\"');
const labelText = (l: Labels, extra = '') => {
  const parts = Object.entries(l).map(([k, v]) => `${k}="${escape(v)}"`);
  if (extra) parts.push(extra);
  return parts.length ? `{${parts.join(',')}}` : '';
};
const keyOf = (l: Labels) => JSON.stringify(Object.entries(l));

interface Family {
  help: string;
  type: 'gauge' | 'histogram';
  render(name: string): string[];
}

/** Gauges and histograms with labels, rendered in Prometheus' text format (version 0.0.4). */
export class Registry {
  private readonly families = new Map<string, Family>();

  gauge(name: string, help: string): (value: number, labels: Labels) => void {
    const series = new Map<string, { labels: Labels; value: number }>();
    this.families.set(name, {
      help,
      type: 'gauge',
      render: (n) => [...series.values()].map((s) => `${n}${labelText(s.labels)} ${s.value}`),
    });
    return (value, labels) => series.set(keyOf(labels), { labels, value });
  }

  histogram(name: string, help: string, buckets: readonly number[]): (value: number, labels: Labels) => void {
    const series = new Map<string, { labels: Labels; counts: number[]; sum: number; count: number }>();
    this.families.set(name, {
      help,
      type: 'histogram',
      render: (n) =>
        [...series.values()].flatMap((s) => [
          ...buckets.map((b, i) => `${n}_bucket${labelText(s.labels, `le="${b}"`)} ${s.counts[i]}`),
          `${n}_bucket${labelText(s.labels, 'le="+Inf"')} ${s.count}`,
          `${n}_sum${labelText(s.labels)} ${s.sum}`,
          `${n}_count${labelText(s.labels)} ${s.count}`,
        ]),
    });
    return (value, labels) => {
      const key = keyOf(labels);
      const s = series.get(key) ?? { labels, counts: buckets.map(() => 0), sum: 0, count: 0 };
      buckets.forEach((b, i) => (s.counts[i] += value <= b ? 1 : 0));
      s.sum += value;
      s.count += 1;
      series.set(key, s);
    };
  }

  /** Every family that has a series. */
  render(): string {
    const lines: string[] = [];
    for (const [name, f] of this.families) {
      const samples = f.render(name);
      if (samples.length) lines.push(`# HELP ${name} ${escapeHelp(f.help)}`, `# TYPE ${name} ${f.type}`, ...samples);
    }
    return lines.length ? `${lines.join('\n')}\n` : '';
  }
}

/** What the step loop heartbeats (activities/resumable.ts `Details`), as far as metrics read it. */
interface StepDetails {
  step?: unknown;
  total?: unknown;
  stepSeconds?: unknown;
  checkpointBytes?: unknown;
  progress?: unknown;
}

/** The activity a heartbeat came from. */
export interface ActivityCall {
  activity: string;
  input: unknown;
  taskQueue: string;
}

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

export class TrainingMetrics {
  private readonly step;
  private readonly total;
  private readonly checkpointBytes;
  private readonly stepSeconds;
  private readonly progress = new Map<string, (value: number, labels: Labels) => void>();

  constructor(readonly registry = new Registry()) {
    this.step = registry.gauge('t1_step', 'progress of the activity: steps done (training steps; items for others that count)');
    this.total = registry.gauge('t1_steps_planned', 'steps the activity runs in all');
    this.stepSeconds = registry.histogram('t1_step_seconds', 'wall-clock seconds of each training step', STEP_SECONDS_BUCKETS);
    this.checkpointBytes = registry.gauge('t1_checkpoint_bytes', 'bytes of the last checkpoint the step loop committed');
    for (const [key, { name, help }] of Object.entries(PROGRESS_GAUGES)) this.progress.set(key, registry.gauge(name, help));
  }

  /** Records one heartbeat of a training activity; anything else (no step) is ignored. */
  observe = (call: ActivityCall, details: unknown): void => {
    const d = (details ?? {}) as StepDetails;
    const step = num(d.step);
    if (step === undefined) return;
    const campaign = (call.input as { campaignId?: unknown } | null)?.campaignId;
    const labels = { campaign: typeof campaign === 'string' ? campaign : '', activity: call.activity, task_queue: call.taskQueue };
    this.step(step, labels);
    const total = num(d.total);
    if (total !== undefined) this.total(total, labels);
    const seconds = num(d.stepSeconds);
    if (seconds !== undefined) this.stepSeconds(seconds, labels);
    const bytes = num(d.checkpointBytes);
    if (bytes !== undefined) this.checkpointBytes(bytes, labels);
    for (const [key, value] of Object.entries((d.progress ?? {}) as Record<string, unknown>)) {
      const v = num(value);
      if (v !== undefined) this.progress.get(key)?.(v, labels);
    }
  };
}

/** This process's training metrics: every compute pool of the process reports here (workers/worker.ts). */
export const processMetrics = new TrainingMetrics();

/** The metrics port asked for: `--metrics-port`, else T1_METRICS_PORT; undefined: no endpoint. */
export const metricsPort = (flag: string | undefined, env: NodeJS.ProcessEnv = process.env) =>
  portSetting('--metrics-port', flag, 'T1_METRICS_PORT', env);

export interface MetricsServerOptions {
  registry: Registry;
  /** The SDK core's exporter (`http://127.0.0.1:P/metrics`), appended to each scrape. */
  sdk?: string;
  /** Default: every address, IPv4 and IPv6, as Prometheus scraping the pod's address needs. */
  host?: string;
}

export class MetricsServer extends Endpoint {
  private constructor(
    server: Server,
    private readonly o: MetricsServerOptions,
  ) {
    super(server);
  }

  /** Listens on `port` (0: any free one; `port` then tells which). */
  static async start(port: number, o: MetricsServerOptions): Promise<MetricsServer> {
    const server = createServer();
    const metrics = new MetricsServer(server, o);
    server.on('request', (req: IncomingMessage, res: ServerResponse) => void metrics.answer(req, res));
    server.headersTimeout = 5_000;
    server.requestTimeout = 10_000;
    await listen(server, port, o.host);
    return metrics;
  }

  /** t1's part, then the SDK's; an SDK exporter that does not answer leaves a comment, never a failed scrape. */
  async scrape(): Promise<string> {
    let sdk = '';
    if (this.o.sdk)
      try {
        const r = await fetch(this.o.sdk, { signal: AbortSignal.timeout(3_000) });
        sdk = r.ok ? await r.text() : `# the Temporal SDK's metrics: HTTP ${r.status}\n`;
      } catch (e) {
        sdk = `# the Temporal SDK's metrics: ${escapeHelp((e as Error).message)}\n`;
      }
    return this.o.registry.render() + (sdk && !sdk.endsWith('\n') ? `${sdk}\n` : sdk);
  }

  private async answer(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '').split('?')[0];
    const ok = req.method === 'GET' && path === '/metrics';
    const text = ok ? await this.scrape() : 'only GET /metrics is served\n';
    res.writeHead(ok ? 200 : 404, {
      'content-type': ok ? 'text/plain; version=0.0.4; charset=utf-8' : 'text/plain; charset=utf-8',
      'content-length': Buffer.byteLength(text),
      'cache-control': 'no-store',
    });
    res.end(text);
  }
}
