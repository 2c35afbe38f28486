/**
 * What a running activity needs from its host: the last heartbeat details of a retried attempt,
 * a heartbeat, the cancellation signal and a log line. Inside a Temporal worker that is the
 * activity Context; inside a compute process (workers/compute-child) the parent worker forwards
 * each of them over IPC. Activities call `activityScope()` and run the same in both places.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { Context } from '@temporalio/activity';

export interface ActivityScope {
  /** Details of the previous attempt's last heartbeat (undefined on a first attempt). */
  readonly heartbeatDetails: unknown;
  heartbeat(details?: unknown): void;
  /** Heartbeats again with the last details (while waiting on other work, without changing what a retry resumes from). */
  keepAlive(): void;
  /** Aborted when the activity is cancelled (a pause, a cancel, a worker shutdown). */
  readonly signal: AbortSignal;
  log(message: string): void;
}

const scopes = new AsyncLocalStorage<ActivityScope>();
const lastDetails = new WeakMap<Context, unknown>();

/** The scope of the activity running in this async context. */
export function activityScope(): ActivityScope {
  const own = scopes.getStore();
  if (own) return own;
  const ctx = Context.current();
  return {
    heartbeatDetails: ctx.info.heartbeatDetails,
    heartbeat: (d) => {
      lastDetails.set(ctx, d);
      ctx.heartbeat(d);
    },
    keepAlive: () => ctx.heartbeat(lastDetails.has(ctx) ? lastDetails.get(ctx) : ctx.info.heartbeatDetails),
    signal: ctx.cancellationSignal,
    log: (m) => ctx.log.info(m),
  };
}

/** Runs `fn` with `scope` as the activity scope of everything it calls; keepAlive resends what `scope.heartbeat` last sent. */
export function runInScope<T>(scope: Omit<ActivityScope, 'keepAlive'>, fn: () => Promise<T>): Promise<T> {
  let last = scope.heartbeatDetails;
  const full: ActivityScope = {
    ...scope,
    heartbeat: (d) => {
      last = d;
      scope.heartbeat(d);
    },
    keepAlive: () => scope.heartbeat(last),
  };
  return scopes.run(full, fn);
}
