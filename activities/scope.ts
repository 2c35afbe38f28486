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
  /** Aborted when the activity is cancelled (a pause, a cancel, a worker shutdown). */
  readonly signal: AbortSignal;
  log(message: string): void;
}

const scopes = new AsyncLocalStorage<ActivityScope>();

/** The scope of the activity running in this async context. */
export function activityScope(): ActivityScope {
  const own = scopes.getStore();
  if (own) return own;
  const ctx = Context.current();
  return {
    heartbeatDetails: ctx.info.heartbeatDetails,
    heartbeat: (d) => ctx.heartbeat(d),
    signal: ctx.cancellationSignal,
    log: (m) => ctx.log.info(m),
  };
}

/** Runs `fn` with `scope` as the activity scope of everything it calls. */
export function runInScope<T>(scope: ActivityScope, fn: () => Promise<T>): Promise<T> {
  return scopes.run(scope, fn);
}
