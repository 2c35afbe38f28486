/**
 * Activities run in compute processes, not on the worker's event loop. A training step holds the
 * thread that runs it for seconds; in the worker process that thread also answers workflow tasks,
 * queries and heartbeats, so status would stall behind training. A worker keeps a pool of child
 * processes (one per concurrent activity slot, started on demand and reused; each loads the tfjs
 * backend once) and forwards every activity call: input and heartbeat details go in, heartbeats,
 * the result or the error come back, a cancellation is passed on. A child that dies fails its
 * activity with a retryable error; a child whose parent dies exits (the IPC channel closes).
 * While a child runs an activity the worker heartbeats for it (workers/liveness.ts), so a step may
 * take longer than the heartbeat timeout; a hung child is killed within that timeout.
 * A child gets the worker's parsed grants and connection settings by IPC, and an environment
 * without the worker's S3 credentials or grant settings: it never parses grants of its own.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { setPriority } from 'node:os';
import { fileURLToPath } from 'node:url';
import { ApplicationFailure, CancelledFailure, Context } from '@temporalio/activity';
import type { Activities } from '../activities';
import { ZodError } from 'zod';
import type { ConnectionConfig, S3Config, TemporalConfig } from '../config/connection';
import { computeEnv, type Grants } from '../util/grants';
import { failureType, isRetryable } from '../rules/failures';
import { UserError } from '../util/errors';
import { Liveness } from './liveness';
import type { ActivityCall } from './metrics';

/** Parent -> child messages. */
export type ToChild =
  | { type: 'init'; s3: S3Config; temporal: TemporalConfig; grants: Grants }
  | { type: 'run'; id: number; name: string; input: unknown; heartbeatDetails: unknown }
  | { type: 'cancel'; id: number }
  | { type: 'ping' };

/** An error as it crosses the process boundary. */
export interface ChildError {
  message: string;
  type: string;
  stack?: string;
  nonRetryable: boolean;
  cancelled: boolean;
}

/** Child -> parent messages. */
export type FromChild =
  | { type: 'ready'; backend: string; activities: string[] }
  | { type: 'alive' }
  | { type: 'heartbeat'; id: number; details: unknown }
  | { type: 'done'; id: number; result: unknown }
  | { type: 'failed'; id: number; error: ChildError };

/** The compute processes' niceness (0 normal .. 19 lowest): below the worker's own. */
export const COMPUTE_NICENESS = 10;

const CHILD = fileURLToPath(new URL('./compute-child.ts', import.meta.url));

/** An error raised in the child, as it crosses to the parent; what rules/failures.ts calls permanent is not retried. */
export function fromError(err: unknown): ChildError {
  if (!(err instanceof Error)) return { message: String(err), type: 'Error', nonRetryable: false, cancelled: false };
  // The type retry policies match on: what Temporal gives an error thrown in-process (its class name), or the S3 SDK's code.
  const type = err instanceof ApplicationFailure && err.type ? err.type : failureType(err);
  return {
    message: err.message,
    type,
    stack: err.stack,
    nonRetryable:
      err instanceof ApplicationFailure
        ? err.nonRetryable === true
        : err instanceof UserError || err instanceof ZodError || !isRetryable(type),
    cancelled: err instanceof CancelledFailure,
  };
}

/** The failure the parent's activity throws for an error raised in the child (same type, same retry rules). */
export function toFailure(e: ChildError): Error {
  if (e.cancelled) return new CancelledFailure(e.message);
  const f = ApplicationFailure.create({ message: e.message, type: e.type, nonRetryable: e.nonRetryable });
  if (e.stack) f.stack = e.stack;
  return f;
}

class ComputeProcess {
  private pending: {
    id: number;
    ctx: Context;
    watch: Liveness | null;
    onHeartbeat?: (details: unknown) => void;
    resolve(v: unknown): void;
    reject(e: Error): void;
  } | null = null;
  private exit: Error | null = null;
  private nextId = 0;

  private constructor(private readonly child: ChildProcess) {
    child.on('message', (m: FromChild) => this.receive(m));
    child.once('exit', (code, signal) => {
      this.exit ??= ApplicationFailure.retryable(`compute process ${child.pid} exited (${signal ?? `code ${code}`})`, 'ComputeProcessExit');
      this.settle()?.reject(this.exit);
    });
  }

  /** A started child that has loaded its backend and built its activities. */
  static async start(
    { s3, temporal }: Pick<ConnectionConfig, 's3' | 'temporal'>,
    grants: Grants,
    script = CHILD,
  ): Promise<{ proc: ComputeProcess; ready: Extract<FromChild, { type: 'ready' }> }> {
    const child = fork(script, [], {
      execArgv: ['--import', 'tsx'],
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: computeEnv(process.env),
    });
    // Training takes every core it is given; at a lower CPU priority it still gets them all while
    // nothing else wants them, and this process's answers (queries, heartbeats, `t1 campaign status`)
    // and the rest of the machine are served first.
    if (child.pid !== undefined) setPriority(child.pid, COMPUTE_NICENESS);
    const proc = new ComputeProcess(child);
    const ready = await new Promise<Extract<FromChild, { type: 'ready' }>>((resolve, reject) => {
      child.once('message', (m: FromChild) =>
        m.type === 'ready' ? resolve(m) : reject(new Error(`compute process: unexpected ${m.type}`)),
      );
      child.once('exit', (code, signal) => reject(new Error(`compute process exited while starting (${signal ?? `code ${code}`})`)));
      child.send({ type: 'init', s3, temporal, grants } satisfies ToChild);
    });
    return { proc, ready };
  }

  get alive(): boolean {
    return this.exit === null;
  }

  /** Runs one call; `onHeartbeat` sees the details of each heartbeat the child sends (not the worker's repeats of them). */
  run(name: string, input: unknown, ctx: Context, onHeartbeat?: (details: unknown) => void): Promise<unknown> {
    if (this.exit) return Promise.reject(this.exit);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timeoutMs = ctx.info.heartbeatTimeoutMs;
      const watch = timeoutMs
        ? new Liveness({
            pid: this.child.pid!,
            timeoutMs,
            details: ctx.info.heartbeatDetails,
            heartbeat: (d) => ctx.heartbeat(d),
            ping: () => this.alive && this.child.send({ type: 'ping' } satisfies ToChild),
            onHung: (ms) => {
              this.exit = ApplicationFailure.retryable(
                `compute process ${this.child.pid} hung: no CPU time, message or answer for ${(ms / 1000).toFixed(1)} s; killed`,
                'ComputeProcessHung',
              );
              this.child.kill('SIGKILL');
            },
          })
        : null;
      this.pending = { id, ctx, watch, onHeartbeat, resolve, reject };
      const cancel = () => this.alive && this.child.send({ type: 'cancel', id } satisfies ToChild);
      if (ctx.cancellationSignal.aborted) cancel();
      else ctx.cancellationSignal.addEventListener('abort', cancel, { once: true });
      this.child.send({ type: 'run', id, name, input, heartbeatDetails: ctx.info.heartbeatDetails } satisfies ToChild);
    });
  }

  private receive(m: FromChild): void {
    const p = this.pending;
    if (m.type === 'alive') return p?.watch?.alive();
    if (!p || !('id' in m) || m.id !== p.id) return;
    if (m.type === 'heartbeat') {
      p.onHeartbeat?.(m.details);
      return p.watch ? p.watch.reported(m.details) : p.ctx.heartbeat(m.details);
    }
    this.settle();
    if (m.type === 'done') p.resolve(m.result);
    else p.reject(toFailure(m.error));
  }

  /** Ends the running call's bookkeeping; returns it (to resolve or reject). */
  private settle() {
    const p = this.pending;
    p?.watch?.stop();
    this.pending = null;
    return p;
  }

  kill(): void {
    this.child.kill('SIGTERM');
  }
}

export class ComputePool {
  private readonly idle: ComputeProcess[] = [];
  private readonly all = new Set<ComputeProcess>();
  private closed = false;

  constructor(
    private readonly conn: Pick<ConnectionConfig, 's3' | 'temporal'>,
    /** What campaign configs may make this worker read or send (util/grants.ts). */
    private readonly grants: Grants,
    /** The child's entry point (tests start stand-ins that speak the same protocol). */
    private readonly script = CHILD,
    /** Sees every heartbeat a child sends, with the call it belongs to (workers/metrics.ts). */
    private readonly onHeartbeat?: (call: ActivityCall, details: unknown) => void,
  ) {}

  /**
   * Starts the first child and returns the activities it serves, each call run in an idle child (a
   * new one when none is idle), and its backend (every child loads the same one).
   */
  async start(): Promise<{ backend: string; activities: Activities }> {
    const { proc, ready } = await this.spawn();
    this.idle.push(proc);
    const activities = Object.fromEntries(ready.activities.map((name) => [name, (input: unknown) => this.run(name, input)]));
    return { backend: ready.backend, activities: activities as unknown as Activities };
  }

  private async spawn() {
    const started = await ComputeProcess.start(this.conn, this.grants, this.script);
    this.all.add(started.proc);
    return started;
  }

  private async run(name: string, input: unknown): Promise<unknown> {
    const ctx = Context.current();
    const proc = this.idle.pop() ?? (await this.spawn()).proc;
    try {
      const observe = this.onHeartbeat;
      const call = { activity: name, input, taskQueue: ctx.info.taskQueue };
      return await proc.run(name, input, ctx, observe && ((details) => observe(call, details)));
    } finally {
      if (proc.alive && !this.closed) this.idle.push(proc);
      else this.all.delete(proc);
    }
  }

  /** Stops every child (call after the workers have stopped). */
  close(): void {
    this.closed = true;
    for (const p of this.all) p.kill();
    this.all.clear();
    this.idle.length = 0;
  }
}
