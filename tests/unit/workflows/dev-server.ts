/** What the workflow tests share: their ephemeral Temporal dev server and workers for stub activities. */
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker, type WorkerOptions } from '@temporalio/worker';
import { loadStack } from '../../../config/connection';
import { SA } from '../../../config/search-attributes';
import { QUEUES } from '../../../contracts/queues';
import { provision } from '../../../infra/provision';
import { workflowBundle } from '../../../workers/worker';

/** A dev server of the binary the local stack provisions, t1's search attributes registered. */
export async function devServer(): Promise<TestWorkflowEnvironment> {
  const bins = await provision(loadStack().cacheDir);
  return TestWorkflowEnvironment.createLocal({
    server: { executable: { type: 'existing-path', path: bins.temporal }, searchAttributes: Object.values(SA) },
  });
}

/** A worker for stub activities on `env`, sending heartbeats at once: cancellation reaches an activity on a heartbeat response. */
export function stubWorker(
  env: TestWorkflowEnvironment,
  options: Pick<WorkerOptions, 'taskQueue' | 'workflowBundle' | 'activities'>,
): Promise<Worker> {
  return Worker.create({
    connection: env.nativeConnection,
    ...options,
    maxHeartbeatThrottleInterval: '50ms',
    defaultHeartbeatThrottleInterval: '50ms',
  });
}

/**
 * Runs `body` while stub workers serve every queue, and returns what it returns. The workers stop
 * once `body` settles either way, so a failing body still shuts them down before its error surfaces.
 */
export async function withWorkers<T>(
  env: TestWorkflowEnvironment,
  activities: WorkerOptions['activities'],
  body: () => Promise<T>,
): Promise<T> {
  const bundle = await workflowBundle();
  const workers = await Promise.all(
    Object.values(QUEUES).map((taskQueue) => stubWorker(env, { taskQueue, workflowBundle: bundle, activities })),
  );
  const run = body();
  await Promise.all(
    workers.map((w) =>
      w.runUntil(
        run.then(
          () => undefined,
          () => undefined,
        ),
      ),
    ),
  );
  return run;
}
