/**
 * The worker's health endpoint, for Kubernetes' probes (infra/k8s): a plain HTTP server, on only when
 * `t1 worker --health-port N` or T1_HEALTH_PORT asks for one.
 *
 * - `GET /healthz` (liveness): 200 while no Temporal worker of this process has FAILED or STOPPED.
 *   Starting up counts as alive: a GPU worker may spend many minutes loading its backend and
 *   compiling kernels before it polls, and a start that fails ends the process anyway; only a start
 *   that has not finished within `startupLimitMs` (one stuck waiting on a server) is not. Shutting
 *   down (STOPPING, DRAINING, DRAINED) counts as alive too: a worker finishing its step must not be killed.
 * - `GET /readyz` (readiness): 200 once every worker is RUNNING (polling its queue).
 * - Otherwise 503, and anything else 404. Every answer is one line of JSON.
 *
 * Training steps run in compute processes (workers/compute), so this process's event loop stays free
 * to answer while one runs. It serves state alone: the stage of start-up, task queues and worker
 * states; no setting, grant or address.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { State } from '@temporalio/worker';
import { ConfigError } from '../util/errors';

/** What the endpoint reads of a Temporal `Worker`; tests pass plain objects. */
export interface WatchedWorker {
  getState(): State;
  readonly options: { readonly taskQueue: string };
}

/** States in which a worker will never poll again: the process is dead as a worker (liveness fails). */
const DEAD: ReadonlySet<State> = new Set<State>(['FAILED', 'STOPPED']);

export interface Verdict {
  ok: boolean;
  body: { status: string; reason?: string; stage?: string; workers?: Record<string, State> };
}

const statesOf = (workers: readonly WatchedWorker[]) => Object.fromEntries(workers.map((w) => [w.options.taskQueue, w.getState()]));
const stateLine = (w: WatchedWorker) => `worker on ${w.options.taskQueue} is ${w.getState()}`;

/**
 * Liveness: `workers` undefined while the process is still starting them (`stage` says at what);
 * `stalled`: the start has taken longer than it may.
 */
export function liveness(workers: readonly WatchedWorker[] | undefined, stage: string, stalled = false): Verdict {
  if (!workers && stalled) return { ok: false, body: { status: 'failed', reason: `start-up stalled: ${stage}` } };
  if (!workers) return { ok: true, body: { status: 'starting', stage } };
  const dead = workers.find((w) => DEAD.has(w.getState()));
  if (dead) return { ok: false, body: { status: 'failed', reason: stateLine(dead), workers: statesOf(workers) } };
  return { ok: true, body: { status: 'alive', workers: statesOf(workers) } };
}

/** Readiness: every worker RUNNING. */
export function readiness(workers: readonly WatchedWorker[] | undefined, stage: string): Verdict {
  if (!workers) return { ok: false, body: { status: 'not ready', reason: `starting: ${stage}` } };
  if (!workers.length) return { ok: false, body: { status: 'not ready', reason: 'no workers' } };
  const waiting = workers.find((w) => w.getState() !== 'RUNNING');
  if (waiting) return { ok: false, body: { status: 'not ready', reason: stateLine(waiting), workers: statesOf(workers) } };
  return { ok: true, body: { status: 'ready', workers: statesOf(workers) } };
}

/**
 * The health port asked for: the `--health-port` flag, else T1_HEALTH_PORT; undefined (no endpoint)
 * when neither is set. A value that is not a port 1-65535 is a ConfigError naming where it came from.
 */
export const healthPort = (flag: string | undefined, env: NodeJS.ProcessEnv = process.env) =>
  portSetting('--health-port', flag, 'T1_HEALTH_PORT', env);

/** A port from a flag, else from an environment variable (an empty one counts as unset); undefined when neither is set. */
export function portSetting(flagName: string, flag: string | undefined, envName: string, env: NodeJS.ProcessEnv): number | undefined {
  const [source, raw] = flag !== undefined ? [flagName, flag] : [envName, env[envName]];
  if (raw === undefined || (source === envName && raw.trim() === '')) return undefined;
  const port = /^\d{1,5}$/.test(raw.trim()) ? Number(raw.trim()) : NaN;
  if (!(port >= 1 && port <= 65535)) throw new ConfigError(`${source}: expected a port number from 1 to 65535, got "${raw}"`);
  return port;
}

export interface HealthOptions {
  /** Default: every address, IPv4 and IPv6, as a kubelet probing the pod's address needs. */
  host?: string;
  /** How long start-up may take before /healthz fails; default: no limit. */
  startupLimitMs?: number;
  now?: () => number;
}

/** A worker's own HTTP endpoint (health here, metrics in workers/metrics.ts), started with `listen`. */
export abstract class Endpoint {
  protected constructor(protected readonly server: Server) {}

  /** The port listened on: the free one picked when started on port 0. */
  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** Stops listening and drops open connections, so a client's keep-alive connection cannot hold it open. */
  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}

export class HealthServer extends Endpoint {
  private workers: readonly WatchedWorker[] | undefined;
  private stage = 'starting the worker';
  private readonly now: () => number;
  private readonly startedAt: number;

  private constructor(
    server: Server,
    private readonly o: HealthOptions,
  ) {
    super(server);
    this.now = o.now ?? Date.now;
    this.startedAt = this.now();
  }

  /** Listens on `port` (0: any free one; `port` then tells which). */
  static async start(port: number, o: HealthOptions = {}): Promise<HealthServer> {
    const server = createServer();
    const health = new HealthServer(server, o);
    server.on('request', (req: IncomingMessage, res: ServerResponse) => health.answer(req, res));
    // A probe is one small request: a client that dawdles is cut off rather than held.
    server.headersTimeout = 5_000;
    server.requestTimeout = 5_000;
    server.keepAliveTimeout = 1_000;
    await listen(server, port, o.host);
    return health;
  }

  /** What start-up is doing (shown by /readyz until the workers exist). */
  setStage(stage: string): void {
    this.stage = stage;
  }

  /** The process's workers, from now on what both probes judge. */
  watch(workers: readonly WatchedWorker[]): void {
    this.workers = workers;
  }

  private answer(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '').split('?')[0];
    const probe = req.method === 'GET' && (path === '/healthz' || path === '/readyz') ? path : undefined;
    const limit = this.o.startupLimitMs;
    const stalled = !this.workers && limit !== undefined && this.now() - this.startedAt > limit;
    const { ok, body }: Verdict =
      probe === '/healthz'
        ? liveness(this.workers, this.stage, stalled)
        : probe === '/readyz'
          ? readiness(this.workers, this.stage)
          : { ok: false, body: { status: 'not found', reason: 'only GET /healthz and GET /readyz are served' } };
    const text = `${JSON.stringify(body)}\n`;
    res.writeHead(probe ? (ok ? 200 : 503) : 404, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(text),
      'cache-control': 'no-store',
    });
    res.end(text);
  }
}

/** Starts `server` on port and host (a bind error rejects); it never keeps the process alive. */
export async function listen(server: Server, port: number, host: string | undefined): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.unref();
}
