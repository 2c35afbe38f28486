/**
 * The cluster deployment (infra/k8s): kustomize renders the base and each overlay, and every
 * rendered document is validated against the JSON schema of its kind, generated from the
 * Kubernetes OpenAPI spec (kubernetes-models) and from KEDA's CRDs (@kubernetes-models/keda).
 * Then the properties a platform team relies on: a Deployment per worker role, GPUs where
 * training and sampling run, the rollout autoscaler on its queue, credentials only from Secrets.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ScaledObject, TriggerAuthentication } from '@kubernetes-models/keda/keda.sh/v1alpha1';
import { Deployment } from 'kubernetes-models/apps/v1';
import { ConfigMap, Namespace } from 'kubernetes-models/v1';
import { parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { loadStack } from '../../../config/connection';
import { QUEUES } from '../../../workflows/queues';

const root = fileURLToPath(new URL('../../../', import.meta.url));

/** The schema of every kind the manifests may contain; any other kind fails the test. */
const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  'v1/Namespace': Namespace,
  'v1/ConfigMap': ConfigMap,
  'apps/v1/Deployment': Deployment,
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
  // The worker's grants (config/grants.ts, README "Grants"): names, hosts, directories, buckets; no secret values.
  'T1_ALLOW_SECRETS',
  'T1_ALLOW_TEACHER_HOSTS',
  'T1_ALLOW_TASK_DIRS',
  'T1_ALLOW_TASK_BUCKETS',
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
      expect(d.spec.template.spec.terminationGracePeriodSeconds, d.metadata.name).toBeGreaterThanOrEqual(600);
      expect(worker(d).resources.requests.memory).toBe(worker(d).resources.limits.memory);
      expect(worker(d).resources.requests.cpu).toBeDefined();
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
});

describe.each(VARIANTS.slice(1))('%s', (dir) => {
  const docs = render(dir);
  const config = ofKind(docs, 'ConfigMap').find((c) => c.metadata.name.startsWith('t1-config-'))!;

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
