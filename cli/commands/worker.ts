import { loadConnection } from '../../config/connection';
import { describeGrants, GRANT_SETTINGS, loadGrants, type GrantFlags } from '../../util/grants';
import { connectClient } from '../../infra/temporal';
import { describeBuild, makeCurrent, workerBuild } from '../../workers/build';
import { HealthServer, healthPort } from '../../workers/health';
import { metricsPort } from '../../workers/metrics';
import { serveMetrics, startWorkers } from '../../workers/worker';
import { QUEUES, type Role } from '../../contracts/queues';
import { connectionOptions, overridesFrom, UsageError, type Command } from '../args';

/** The grant flags (util/grants.ts): repeatable, each value a comma-separated list; added to the T1_ALLOW_* variables. */
const grantOptions = Object.fromEntries(Object.values(GRANT_SETTINGS).map((s) => [s.flag, { type: 'string', multiple: true } as const]));

export const workerCommands: Command[] = [
  {
    path: ['worker'],
    summary:
      'Run a worker: --role gpu (training, evaluation), eval (inference-scaling points), cpu (synthesis, anchors, promotion), rollout (RL rollout shards) or all',
    usage:
      'worker [--role gpu|eval|cpu|rollout|all, or a comma-separated list of roles]\n' +
      '       [--allow-secret NAME|PREFIX*] [--allow-teacher-host HOST[:PORT]] [--allow-task-dir DIR] [--allow-task-bucket BUCKET]\n' +
      '       [--allow-model-dir DIR] [--allow-model-bucket BUCKET]\n' +
      '       [--health-port N] [--metrics-port N] [--deployment NAME] [--build-id ID] [--make-current]\n\n' +
      'Grants (each flag repeatable or comma-separated, added to T1_ALLOW_SECRETS, T1_ALLOW_TEACHER_HOSTS, T1_ALLOW_TASK_DIRS,\n' +
      'T1_ALLOW_TASK_BUCKETS, T1_ALLOW_MODEL_DIRS, T1_ALLOW_MODEL_BUCKETS): what a campaign config may make this worker read or\n' +
      'send. Nothing else is: a config naming another key variable (T1_OPENAI_API_KEY is always granted), teacher host, local\n' +
      'task file or base model, or bucket (the checkpoint bucket is always granted; builtin:// and hf:// bases are) fails its\n' +
      'campaign at once, naming the field.\n\n' +
      '--health-port N (or T1_HEALTH_PORT): serve GET /healthz (200 while no worker has failed or stopped) and GET /readyz\n' +
      '(200 once every worker polls) on port N, for Kubernetes probes; off by default.\n\n' +
      "--metrics-port N (or T1_METRICS_PORT): serve Prometheus metrics at GET /metrics on port N: the Temporal SDK's\n" +
      '(temporal_*) and the training metrics of the activities this worker runs (t1_*: step seconds, tokens/s, loss,\n' +
      'reward, KL, entropy, checkpoint bytes); off by default.\n\n' +
      '--deployment NAME (or T1_WORKER_DEPLOYMENT): Temporal Worker Versioning. The worker registers as version --build-id\n' +
      '(or T1_BUILD_ID; default <package version>-<hash of the sources>) of deployment NAME: campaigns move to the\n' +
      "deployment's current version at their next workflow task, short workflows finish on the build that started them.\n" +
      '--make-current makes this build the current version once it polls (first deployment; a rolling upgrade: README).\n' +
      'Without --deployment the worker is unversioned. Either way it prints its build.',
    options: {
      role: { type: 'string', default: 'all' },
      'health-port': { type: 'string' },
      'metrics-port': { type: 'string' },
      deployment: { type: 'string' },
      'build-id': { type: 'string' },
      'make-current': { type: 'boolean', default: false },
      ...grantOptions,
      ...connectionOptions,
    },
    async run(v) {
      const roles = v.role === 'all' ? 'all' : (v.role.split(',') as Role[]);
      const bad = roles === 'all' ? [] : roles.filter((r) => !(r in QUEUES));
      if (bad.length || !roles.length)
        throw new UsageError(`--role: expected all or roles among ${Object.keys(QUEUES).join(', ')}, got "${v.role}"`);
      const port = healthPort(v['health-port']);
      const metrics = metricsPort(v['metrics-port']);
      const grants = loadGrants(v as GrantFlags);
      const conn = loadConnection(overridesFrom(v));
      const build = workerBuild({ deployment: v.deployment, buildId: v['build-id'] });
      if (v['make-current'] && !build.deployment) throw new UsageError('--make-current needs --deployment NAME (or T1_WORKER_DEPLOYMENT)');
      // Up before start-up begins: a GPU worker may take minutes to poll, and is alive meanwhile;
      // a start still unfinished after an hour (twice the longest kernel compilation) is stuck.
      const health = port === undefined ? undefined : await HealthServer.start(port, { startupLimitMs: 60 * 60_000 });
      if (health) console.error(`[worker] health: GET /healthz, /readyz on port ${health.port}`);
      // Before start-up too: the SDK's exporter must be set when its runtime is installed.
      const metricsServer = metrics === undefined ? undefined : await serveMetrics(metrics);
      if (metricsServer) console.error(`[worker] metrics: GET /metrics on port ${metricsServer.port}`);
      try {
        const running = await startWorkers(conn, roles, grants, (stage) => health?.setStage(stage), build);
        health?.watch(running.workers);
        console.error(`[worker] role ${v.role}, backend ${running.backend}, ${describeBuild(build)}; Ctrl-C stops it`);
        if (v['make-current']) {
          const client = await connectClient(conn.temporal);
          try {
            await makeCurrent(client, conn.temporal.namespace, build);
          } finally {
            await client.connection.close();
          }
          console.error(`[worker] ${build.buildId} is now the current version of deployment ${build.deployment}`);
        }
        console.error(`[worker] grants: ${describeGrants(grants, conn.s3.bucket)}`);
        const stop = () => void running.shutdown();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
        await running.done;
      } finally {
        await health?.close();
        await metricsServer?.close();
      }
    },
  },
];
