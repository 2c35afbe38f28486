/**
 * One worker entry point; roles pick task queues. A GPU-queue worker runs one activity at a time,
 * so one GPU never trains two things at once. In local mode one process serves both queues.
 */
import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { bundleWorkflowCode, DefaultLogger, Runtime, Worker, type WorkflowBundle } from '@temporalio/worker';
import type { ConnectionConfig } from '../config/connection';
import type { Grants } from '../util/grants';
import { dataConverter } from '../infra/codec';
import { connectWorker } from '../infra/temporal';
import { QUEUES, type Role } from '../contracts/queues';
import { deploymentOptions, type WorkerBuild } from './build';
import { ComputePool } from './compute';
import { MetricsServer, processMetrics } from './metrics';
import { checkS3 } from './preflight';

export type WorkerRole = Role | 'all';

const bundles = new Map<string, Promise<WorkflowBundle>>();
let runtimeInstalled = false;

/**
 * Installs the Temporal runtime of this process (once; a later call changes nothing). With
 * `prometheus` (host:port) its core serves the SDK's metrics there. The runtime is per process and
 * fixed at install: call this before anything connects to Temporal.
 */
export function installRuntime(prometheus?: string): void {
  if (runtimeInstalled) return;
  Runtime.install({
    logger: new DefaultLogger('WARN'),
    ...(prometheus && { telemetryOptions: { metrics: { prometheus: { bindAddress: prometheus } } } }),
  });
  runtimeInstalled = true;
}

/**
 * The worker's metrics endpoint on `port` (workers/metrics.ts): t1's training metrics and the SDK's,
 * whose exporter listens on a free loopback port that only this process reads. Before `startWorkers`.
 */
export async function serveMetrics(port: number): Promise<MetricsServer> {
  const probe = createServer().listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const sdkPort = (probe.address() as AddressInfo).port;
  await new Promise((r) => probe.close(r));
  installRuntime(`127.0.0.1:${sdkPort}`);
  return MetricsServer.start(port, { registry: processMetrics.registry, sdk: `http://127.0.0.1:${sdkPort}/metrics` });
}

/**
 * Workflow code is bundled once per process and shared by every worker in it. A versioned worker's
 * bundle declares each workflow's versioning behaviour (workflows/versioned.ts), which the server
 * refuses from an unversioned worker; `failureConverterPath` is the data converter's (infra/codec.ts).
 */
export function workflowBundle(versioned = false, failureConverterPath?: string): Promise<WorkflowBundle> {
  const key = `${versioned} ${failureConverterPath ?? ''}`;
  let bundle = bundles.get(key);
  if (!bundle) {
    const file = versioned ? '../workflows/versioned.ts' : '../workflows/index.ts';
    const workflowsPath = fileURLToPath(new URL(file, import.meta.url));
    bundle = bundleWorkflowCode({ workflowsPath, failureConverterPath, logger: new DefaultLogger('WARN') });
    bundles.set(key, bundle);
  }
  return bundle;
}

export interface RunningWorkers {
  workers: Worker[];
  backend: string;
  /** Resolves when every worker has stopped. */
  done: Promise<void>;
  /** Graceful shutdown: in-flight activities finish or are cancelled. */
  shutdown(): Promise<void>;
}

/**
 * Serves the queues of `role` ('all': every queue; a list: those roles in one process). `grants`:
 * what campaign configs may make this worker read or send (util/grants.ts `loadGrants`).
 * `onStage`: told what start-up is doing (the health endpoint shows it, workers/health.ts).
 * `build`: with a deployment, the workers register as that deployment's version (workers/build.ts).
 */
export async function startWorkers(
  conn: ConnectionConfig,
  role: WorkerRole | Role[],
  grants: Grants,
  onStage: (stage: string) => void = () => {},
  build?: WorkerBuild,
): Promise<RunningWorkers> {
  installRuntime();
  onStage('checking S3');
  await checkS3(conn.s3); // before anything polls: a worker that cannot store checkpoints must not take tasks
  // Activities run in compute processes (workers/compute): this process only talks to Temporal.
  const pool = new ComputePool(conn, grants, undefined, processMetrics.observe);
  onStage('starting a compute process (loading the backend)');
  const { backend, activities } = await pool.start();
  onStage('connecting to Temporal');
  const connection = await connectWorker(conn.temporal);
  const roles: Role[] = role === 'all' ? (Object.keys(QUEUES) as Role[]) : Array.isArray(role) ? role : [role];
  onStage('creating the workers');
  const converter = dataConverter(conn.temporal); // payload and failure encryption (T1_PAYLOAD_KEYS)
  const workflowBundleCode = await workflowBundle(!!build?.deployment, converter.failureConverterPath);
  const workers = await Promise.all(
    roles.map((r) =>
      Worker.create({
        connection,
        namespace: conn.temporal.namespace,
        taskQueue: QUEUES[r],
        dataConverter: converter,
        activities,
        // Workflows are light; every worker polls its queue for them too.
        workflowBundle: workflowBundleCode,
        maxConcurrentActivityTaskExecutions: r === 'cpu' ? 2 : 1, // one model on the accelerator at a time; one shard per rollout worker
        shutdownGraceTime: '10s',
        ...(build?.deployment && { workerDeploymentOptions: deploymentOptions(build) }),
      }),
    ),
  );
  const done = Promise.all(workers.map((w) => w.run())).then(async () => {
    pool.close();
    await connection.close();
  });
  return {
    workers,
    backend,
    done,
    async shutdown() {
      for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
      await done;
    },
  };
}
