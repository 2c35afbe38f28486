/**
 * The cluster deployment (infra/k8s): kustomize renders the base and each overlay, and every
 * rendered document is validated against the JSON schema of its kind, generated from the
 * Kubernetes OpenAPI spec (kubernetes-models) and from KEDA's CRDs (@kubernetes-models/keda).
 * Then the properties a platform team relies on: a Deployment per worker role, GPUs where
 * training and sampling run, the rollout autoscaler on its queue, credentials only from Secrets,
 * and the hardening: a read-only root with scratch volumes where workers write, no service account
 * token, limits, probes on the health endpoint, and a NetworkPolicy that lets workers reach only
 * DNS, Temporal and S3.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { isIPv4 } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ScaledObject, TriggerAuthentication } from '@kubernetes-models/keda/keda.sh/v1alpha1';
import { Deployment } from 'kubernetes-models/apps/v1';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { ConfigMap, Namespace } from 'kubernetes-models/v1';
import { parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { loadStack } from '../../../config/connection';
import { healthPort } from '../../../workers/health';
import { metricsPort } from '../../../workers/metrics';
import { QUEUES } from '../../../contracts/queues';

const root = fileURLToPath(new URL('../../../', import.meta.url));

/** The schema of every kind the manifests may contain; any other kind fails the test. */
const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  'v1/Namespace': Namespace,
  'v1/ConfigMap': ConfigMap,
  'apps/v1/Deployment': Deployment,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
  'keda.sh/v1alpha1/ScaledObject': ScaledObject,
  'keda.sh/v1alpha1/TriggerAuthentication': TriggerAuthentication,
};

/** Non-secret settings (config/connection.ts); the S3 keys and the TLS key material are not among them. */
const CONFIG_KEYS = [
  'T1_TEMPORAL_ADDRESS',
  'T1_TEMPORAL_NAMESPACE',
  'T1_TEMPORAL_TLS',
  'T1_TEMPORAL_TLS_SERVER_NAME',
  'T1_TEMPORAL_TLS_CA',
  'T1_TEMPORAL_TLS_CERT',
  'T1_TEMPORAL_TLS_KEY',
  'T1_S3_ENDPOINT',
  'T1_S3_BUCKET',
  'T1_S3_REGION',
  'T1_S3_FORCE_PATH_STYLE',
  // The worker's grants (util/grants.ts, README "Grants"): names, hosts, directories, buckets; no secret values.
  'T1_ALLOW_SECRETS',
  'T1_ALLOW_TEACHER_HOSTS',
  'T1_ALLOW_TASK_DIRS',
  'T1_ALLOW_TASK_BUCKETS',
  // Worker Versioning (workers/build.ts): names, not secrets.
  'T1_WORKER_DEPLOYMENT',
  'T1_BUILD_ID',
];
const SECRET_ENV = ['T1_S3_ACCESS_KEY_ID', 'T1_S3_SECRET_ACCESS_KEY'];

interface Doc {
  apiVersion: string;
  kind: string;
  metadata: { name: string };
  [field: string]: any;
}

/** kustomize built from the Go module proxy into t1's cache (once), for machines without kustomize or kubectl. */
const KUSTOMIZE = 'sigs.k8s.io/kustomize/kustomize/v5@v5.7.1';
function goKustomize(): string {
  const bin = join(loadStack().cacheDir, 'kustomize-v5.7.1');
  const exe = join(bin, 'kustomize');
  if (!existsSync(exe))
    execFileSync('go', ['install', KUSTOMIZE], { env: { ...process.env, GOBIN: bin }, stdio: ['ignore', 'ignore', 'pipe'] });
  return exe;
}

/** Renders with the real kustomize: the standalone binary, else the one built into kubectl, else one built with Go. */
function render(dir: string): Doc[] {
  const path = `${root}${dir}`;
  for (const [cmd, args] of [
    ['kustomize', ['build', path]],
    ['kubectl', ['kustomize', path]],
    [goKustomize, ['build', path]],
  ] as const) {
    try {
      const out = execFileSync(typeof cmd === 'string' ? cmd : cmd(), args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      return parseAllDocuments(out).map((d) => {
        if (d.errors.length) throw d.errors[0];
        return d.toJS() as Doc;
      });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  throw new Error('rendering infra/k8s needs kustomize, kubectl (its built-in kustomize) or go (to build kustomize) on PATH');
}

/** Schema errors of every document, as "Kind/name: error" lines; empty when all are valid. */
function schemaErrors(docs: Doc[]): string[] {
  return docs.flatMap((doc) => {
    const Model = MODELS[`${doc.apiVersion}/${doc.kind}`];
    if (!Model) return [`${doc.kind}/${doc.metadata.name}: no schema for ${doc.apiVersion} ${doc.kind}`];
    try {
      new Model(doc as never).validate();
      return [];
    } catch (err) {
      return [`${doc.kind}/${doc.metadata.name}: ${(err as Error).message}`];
    }
  });
}

const ofKind = (docs: Doc[], kind: string) => docs.filter((d) => d.kind === kind);
const worker = (d: Doc) => d.spec.template.spec.containers.find((c: { name: string }) => c.name === 'worker');
const role = (d: Doc) => /^worker --role (\S+)$/.exec(worker(d).args.join(' '))?.[1];

/** The container's environment variables with literal values. */
const envOf = (c: any): Record<string, string> =>
  Object.fromEntries((c.env ?? []).filter((e: any) => e.value !== undefined).map((e: any) => [e.name, e.value]));

/** The mount that holds `path`: the deepest mountPath that is `path` or a directory above it. */
const mountOf = (c: any, path: string): { name: string; mountPath: string; readOnly?: boolean } | undefined =>
  (c.volumeMounts ?? [])
    .filter((m: any) => path === m.mountPath || path.startsWith(`${m.mountPath.replace(/\/$/, '')}/`))
    .sort((a: any, b: any) => b.mountPath.length - a.mountPath.length)[0];

/** A container port as a probe or policy names it (a number, or the name of one of the container's ports). */
const portOf = (c: any, port: number | string): number | undefined =>
  typeof port === 'number' ? port : c.ports?.find((p: { name?: string }) => p.name === port)?.containerPort;

/** Whether a label selector (matchLabels, matchExpressions) selects these labels. */
function selects(selector: any, labels: Record<string, string>): boolean {
  const byLabels = Object.entries(selector.matchLabels ?? {}).every(([k, v]) => labels[k] === v);
  const byExpressions = (selector.matchExpressions ?? []).every((e: { key: string; operator: string; values?: string[] }) => {
    const has = e.key in labels;
    if (e.operator === 'In') return has && e.values!.includes(labels[e.key]);
    if (e.operator === 'NotIn') return !has || !e.values!.includes(labels[e.key]);
    return e.operator === 'Exists' ? has : !has;
  });
  return byLabels && byExpressions;
}

/** Addresses a prefix of an ipBlock covers, as a power of two (IPv4 out of 32 bits, IPv6 out of 128). */
const cidrBits = (cidr: string) => {
  const [ip, prefix] = cidr.split('/');
  return (isIPv4(ip) ? 32 : 128) - Number(prefix);
};

const VARIANTS = ['infra/k8s/base', 'infra/k8s/overlays/self-hosted', 'infra/k8s/overlays/temporal-cloud'];

describe.each(VARIANTS)('%s', (dir) => {
  const docs = render(dir);
  const deployments = ofKind(docs, 'Deployment');
  const config = ofKind(docs, 'ConfigMap').find((c) => c.metadata.name.startsWith('t1-config-'))!;

  it('is valid against the Kubernetes and KEDA schemas', () => {
    expect(schemaErrors(docs)).toEqual([]);
  });

  it('runs a worker Deployment for every role', () => {
    const roles = deployments.map(role);
    for (const r of new Set(['gpu', 'rollout', 'eval', 'cpu', ...Object.keys(QUEUES)])) expect(roles).toContain(r);
  });

  it('gives training and sampling a GPU each, on GPU nodes, with the GPU image', () => {
    for (const d of deployments.filter((d) => role(d) !== 'cpu')) {
      const pod = d.spec.template.spec;
      expect(worker(d).resources.limits['nvidia.com/gpu'], d.metadata.name).toBe(1);
      expect(worker(d).image).toMatch(/^t1-worker-gpu:/);
      expect(pod.tolerations).toContainEqual({ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' });
      expect(pod.nodeSelector).toEqual({ 'nvidia.com/gpu.present': 'true' });
    }
    const cpu = deployments.find((d) => role(d) === 'cpu')!;
    expect(worker(cpu).image).toMatch(/^t1-worker-cpu:/);
    expect(worker(cpu).resources.limits['nvidia.com/gpu']).toBeUndefined();
  });

  it('lets a worker finish its step on shutdown, within requests and limits', () => {
    for (const d of deployments) {
      const { requests, limits } = worker(d).resources;
      expect(d.spec.template.spec.terminationGracePeriodSeconds, d.metadata.name).toBeGreaterThanOrEqual(600);
      expect(requests.memory).toBe(limits.memory);
      expect(requests.cpu).toBeDefined();
      expect(limits.cpu, d.metadata.name).toBeDefined();
      expect(requests['ephemeral-storage'], d.metadata.name).toBeDefined();
      expect(limits['ephemeral-storage'], d.metadata.name).toBeDefined();
    }
  });

  it('runs every worker on a read-only root, writing only to scratch volumes, without a service account token', () => {
    for (const d of deployments) {
      const pod = d.spec.template.spec;
      const c = worker(d);
      const env = envOf(c);
      expect(pod.automountServiceAccountToken, d.metadata.name).toBe(false);
      expect(c.securityContext.readOnlyRootFilesystem, d.metadata.name).toBe(true);
      // Where a worker writes: temporary files, $HOME, the state and cache dirs (config/connection.ts;
      // models in T1_CACHE_DIR/models), and on a GPU the driver's JIT cache.
      expect(env.HOME, d.metadata.name).toBeDefined();
      expect(env.T1_CACHE_DIR, d.metadata.name).toBeDefined();
      const stateDir = env.T1_STATE_DIR ?? join(env.XDG_STATE_HOME ?? join(env.HOME, '.local', 'state'), 't1');
      const written = ['/tmp', env.HOME, stateDir, join(env.T1_CACHE_DIR, 'models')];
      if (role(d) !== 'cpu') {
        expect(env.CUDA_CACHE_PATH, d.metadata.name).toBeDefined();
        written.push(env.CUDA_CACHE_PATH);
      }
      for (const path of written) {
        const mount = mountOf(c, path);
        expect(mount, `${d.metadata.name} ${path}`).toBeDefined();
        expect(mount!.readOnly, `${d.metadata.name} ${path}`).toBeFalsy();
        const volume = pod.volumes.find((v: { name: string }) => v.name === mount!.name);
        expect(volume?.emptyDir ?? volume?.persistentVolumeClaim ?? volume?.ephemeral, `${d.metadata.name} ${path}`).toBeDefined();
      }
    }
  });

  it('probes the health endpoint: alive at /healthz, ready at /readyz, patiently', () => {
    for (const d of deployments) {
      const c = worker(d);
      // The port `t1 worker` serves on (T1_HEALTH_PORT, parsed as the worker parses it), declared as a container port.
      const port = healthPort(undefined, { T1_HEALTH_PORT: envOf(c).T1_HEALTH_PORT });
      expect(port, d.metadata.name).toBeDefined();
      expect(c.ports).toContainEqual(expect.objectContaining({ containerPort: port, protocol: 'TCP' }));
      const { livenessProbe: live, readinessProbe: ready, startupProbe: startup } = c;
      for (const [probe, path] of [[live, '/healthz'], [ready, '/readyz'], ...(startup ? [[startup, '/healthz']] : [])] as const) {
        expect(probe?.httpGet?.path, d.metadata.name).toBe(path);
        expect(portOf(c, probe.httpGet.port), d.metadata.name).toBe(port);
        expect(probe.timeoutSeconds, d.metadata.name).toBeGreaterThanOrEqual(5);
      }
      // Restarted only after minutes of failures, and not before the endpoint had minutes to come up.
      expect(live.periodSeconds * live.failureThreshold, d.metadata.name).toBeGreaterThanOrEqual(120);
      const grace = startup ? startup.periodSeconds * startup.failureThreshold : (live.initialDelaySeconds ?? 0);
      expect(grace, d.metadata.name).toBeGreaterThanOrEqual(300);
      // A new GPU pod may compile kernels for 30 minutes before it is Ready: the rollout waits for it.
      expect(d.spec.progressDeadlineSeconds, d.metadata.name).toBeGreaterThanOrEqual(1800);
    }
  });

  it('serves metrics for Prometheus on a declared port, which the pod annotations name', () => {
    for (const d of deployments) {
      const c = worker(d);
      const port = metricsPort(undefined, { T1_METRICS_PORT: envOf(c).T1_METRICS_PORT });
      expect(port, d.metadata.name).toBeDefined();
      expect(c.ports).toContainEqual({ name: 'metrics', containerPort: port, protocol: 'TCP' });
      expect(d.spec.template.metadata.annotations, d.metadata.name).toMatchObject({
        'prometheus.io/scrape': 'true',
        'prometheus.io/port': String(port),
        'prometheus.io/path': '/metrics',
      });
    }
  });

  it('lets workers reach DNS and named servers only, and be reached on the health and metrics ports only', () => {
    const policies = ofKind(docs, 'NetworkPolicy');
    for (const d of deployments) {
      const c = worker(d);
      const mine = policies.filter((p) => selects(p.spec.podSelector, d.spec.template.metadata.labels));
      for (const type of ['Ingress', 'Egress']) {
        expect(
          mine.some((p) => p.spec.policyTypes.includes(type)),
          `${d.metadata.name}: ${type} isolated`,
        ).toBe(true);
      }
      const open = [
        healthPort(undefined, { T1_HEALTH_PORT: envOf(c).T1_HEALTH_PORT }),
        metricsPort(undefined, { T1_METRICS_PORT: envOf(c).T1_METRICS_PORT }),
      ];
      for (const rule of mine.flatMap((p) => p.spec.ingress ?? [])) {
        expect(rule.ports?.length, `${d.metadata.name}: an ingress rule for every port`).toBeGreaterThan(0);
        for (const p of rule.ports) expect(open, d.metadata.name).toContain(portOf(c, p.port));
      }
      for (const rule of mine.flatMap((p) => p.spec.egress ?? [])) {
        const where = `${d.metadata.name} egress ${JSON.stringify(rule)}`;
        expect(rule.ports?.length, `${where}: names its ports`).toBeGreaterThan(0);
        if (rule.ports.every((p: { port: unknown }) => p.port === 53)) continue; // DNS
        expect(rule.to?.length, `${where}: names its destinations`).toBeGreaterThan(0);
        for (const peer of rule.to) {
          if (peer.ipBlock) expect(cidrBits(peer.ipBlock.cidr), `${where}: a narrow CIDR`).toBeLessThanOrEqual(24);
          else expect(peer.podSelector ?? peer.namespaceSelector, where).toBeDefined();
          // An empty namespace selector alone is every pod in the cluster.
          if (peer.namespaceSelector && !peer.podSelector) expect(Object.keys(peer.namespaceSelector).length, where).toBeGreaterThan(0);
        }
      }
    }
  });

  it('takes settings from the ConfigMap and credentials only from Secrets', () => {
    expect(CONFIG_KEYS).toEqual(expect.arrayContaining(Object.keys(config.data)));
    for (const name of SECRET_ENV) expect(config.data).not.toHaveProperty(name);
    for (const d of deployments) {
      const c = worker(d);
      expect(c.envFrom).toEqual([{ configMapRef: { name: config.metadata.name } }]);
      for (const name of SECRET_ENV) {
        expect(c.env).toContainEqual({ name, valueFrom: { secretKeyRef: { name: 't1-s3', key: name } } });
      }
    }
  });

  it('autoscales the rollout workers on the backlog of t1-rollout with KEDA', () => {
    const [so] = ofKind(docs, 'ScaledObject');
    expect(so.spec.scaleTargetRef.name).toBe(deployments.find((d) => role(d) === 'rollout')!.metadata.name);
    expect(so.spec.triggers).toHaveLength(1);
    expect(so.spec.triggers[0]).toMatchObject({ type: 'temporal', metadata: { taskQueue: 't1-rollout', queueTypes: 'workflow,activity' } });
    expect(deployments.find((d) => role(d) === 'rollout')!.spec.replicas).toBeUndefined(); // KEDA owns it
  });

  it("registers every worker as the ConfigMap's build of the deployment, and the scaler counts that version's backlog", () => {
    expect(config.data.T1_WORKER_DEPLOYMENT).toMatch(/^[A-Za-z0-9][A-Za-z0-9._-]*$/);
    expect(config.data.T1_BUILD_ID).toMatch(/^[A-Za-z0-9][A-Za-z0-9._-]*$/);
    expect(ofKind(docs, 'ScaledObject')[0].spec.triggers[0].metadata).toMatchObject({
      workerDeploymentName: config.data.T1_WORKER_DEPLOYMENT,
      workerDeploymentBuildId: config.data.T1_BUILD_ID,
    });
    for (const d of deployments) {
      expect(worker(d).env).toContainEqual({
        name: 'T1_PAYLOAD_KEYS',
        valueFrom: { secretKeyRef: { name: 't1-payload-keys', key: 'T1_PAYLOAD_KEYS', optional: true } },
      });
    }
  });
});

describe.each(VARIANTS.slice(1))('%s', (dir) => {
  const docs = render(dir);
  const config = ofKind(docs, 'ConfigMap').find((c) => c.metadata.name.startsWith('t1-config-'))!;

  it("replaces the NetworkPolicy placeholders, opening the ports of the ConfigMap's Temporal and S3", () => {
    const policies = ofKind(docs, 'NetworkPolicy');
    const egress = policies.flatMap((p) => p.spec.egress ?? []);
    for (const peer of egress.flatMap((r) => r.to ?? [])) {
      if (peer.ipBlock) expect(peer.ipBlock.cidr).not.toMatch(/^192\.0\.2\./); // TEST-NET-1: base/networkpolicy.yaml's placeholders
    }
    const s3 = new URL(config.data.T1_S3_ENDPOINT);
    const ports = [Number(config.data.T1_TEMPORAL_ADDRESS.split(':').pop()), Number(s3.port || (s3.protocol === 'https:' ? 443 : 80))];
    for (const port of ports) expect(egress.some((r) => r.ports?.some((p: { port: unknown }) => p.port === port))).toBe(true);
  });

  it('says where Temporal and S3 are, and the scaler watches the same Temporal', () => {
    expect(config.data).toHaveProperty('T1_TEMPORAL_ADDRESS');
    expect(config.data.T1_S3_ENDPOINT).toMatch(/^https?:\/\//);
    expect(ofKind(docs, 'ScaledObject')[0].spec.triggers[0].metadata).toMatchObject({
      endpoint: config.data.T1_TEMPORAL_ADDRESS,
      namespace: config.data.T1_TEMPORAL_NAMESPACE,
    });
  });
});

it('connects to Temporal Cloud with the client certificate from a Secret, workers and scaler alike', () => {
  const docs = render('infra/k8s/overlays/temporal-cloud');
  const { data } = ofKind(docs, 'ConfigMap')[0];
  expect(data.T1_TEMPORAL_TLS).toBe('true');
  for (const d of ofKind(docs, 'Deployment')) {
    const volumes = d.spec.template.spec.volumes as { name: string; secret?: { secretName: string } }[];
    for (const file of [data.T1_TEMPORAL_TLS_CERT, data.T1_TEMPORAL_TLS_KEY]) {
      const mount = worker(d).volumeMounts.find((m: { mountPath: string }) => file.startsWith(`${m.mountPath}/`));
      expect(volumes.find((v) => v.name === mount?.name)?.secret?.secretName, `${d.metadata.name} ${file}`).toBe('t1-temporal-tls');
    }
  }
  const auth = ofKind(docs, 'ScaledObject')[0].spec.triggers[0].authenticationRef;
  const ta = ofKind(docs, 'TriggerAuthentication').find((t) => t.metadata.name === auth?.name);
  expect(ta?.spec.secretTargetRef).toEqual([
    { parameter: 'cert', name: 't1-temporal-tls', key: 'tls.crt' },
    { parameter: 'key', name: 't1-temporal-tls', key: 'tls.key' },
  ]);
});

it('rejects a broken manifest and names what is wrong', () => {
  const errors = schemaErrors(render('tests/unit/infra/broken'));
  expect(errors).toHaveLength(2);
  expect(errors[0]).toMatch(/^Deployment\/t1-worker-gpu: /);
  expect(errors[0]).toContain('data/spec/replicas must be integer');
  expect(errors[0]).toContain('data/spec/template/spec/containers/0 must have required property name');
  expect(errors[1]).toBe('Deploymnet/t1-worker-extra: no schema for apps/v1 Deploymnet');
});
