/**
 * A worker's build, for Temporal's Worker Versioning: a deployment name (the worker fleet, e.g.
 * `t1`) and a build id (the code it runs: the package version and a hash of its sources). With a
 * deployment, workers register as that deployment's version: campaigns (months long) are
 * Auto-Upgrade, moving to the deployment's current version at their next workflow task, while short
 * workflows are Pinned to the build that started them (workflows/index.ts). Without one, workers are
 * unversioned, as before.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Client } from '@temporalio/client';
import type { WorkerDeploymentOptions } from '@temporalio/worker';
import { z } from 'zod';
import { UserError } from '../util/errors';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

// Temporal refuses names starting with `__`; a conservative alphabet keeps ids usable as k8s labels.
const NameSchema = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/, 'letters, digits, ".", "_" or "-", starting with a letter or digit');

export const WorkerBuildSchema = z.object({
  /** T1_WORKER_DEPLOYMENT / --deployment: the deployment's name; unset, the worker is unversioned. */
  deployment: NameSchema.optional(),
  /** T1_BUILD_ID / --build-id; default `<package version>-<12 hex of the source hash>`. */
  buildId: NameSchema,
});
export type WorkerBuild = z.infer<typeof WorkerBuildSchema>;

/** Folders and files whose content is not the worker's code. */
const SKIP = new Set(['node_modules', 'dist', 'tests', 'docs', 'reports', 'bench', 'chaos']);
const CODE = /\.(ts|mts|mjs|js|json)$/;

/** sha256 over the worker's code (sources, presets, package.json and the lock file), by path, in sorted order. */
export function sourceHash(root = ROOT): string {
  const files: string[] = [];
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.name.startsWith('.') || SKIP.has(e.name)) continue;
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && CODE.test(e.name)) files.push(relative(root, p).split('\\').join('/'));
    }
  };
  walk(root);
  const h = createHash('sha256');
  for (const f of files.sort())
    h.update(`${f}\0`)
      .update(readFileSync(join(root, f)))
      .update('\0');
  return h.digest('hex');
}

/** The build from flags or environment; the default build id is derived from the code. */
export function workerBuild(flags: { deployment?: string; buildId?: string } = {}, env = process.env, root = ROOT): WorkerBuild {
  const version = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;
  const raw = {
    deployment: flags.deployment ?? (env.T1_WORKER_DEPLOYMENT || undefined),
    buildId: flags.buildId ?? (env.T1_BUILD_ID || `${version}-${sourceHash(root).slice(0, 12)}`),
  };
  const parsed = WorkerBuildSchema.safeParse(raw);
  if (!parsed.success) {
    const i = parsed.error.issues[0]!;
    const field = i.path[0] === 'deployment' ? '--deployment (T1_WORKER_DEPLOYMENT)' : '--build-id (T1_BUILD_ID)';
    throw new UserError(`${field}: ${i.message}, got "${String(raw[i.path[0] as keyof typeof raw])}"`);
  }
  return parsed.data;
}

/** What Worker.create needs: versioned with Pinned as the default behaviour, or nothing. */
export function deploymentOptions(build: WorkerBuild): WorkerDeploymentOptions | undefined {
  if (!build.deployment) return undefined;
  return {
    version: { deploymentName: build.deployment, buildId: build.buildId },
    useWorkerVersioning: true,
    defaultVersioningBehavior: 'PINNED',
  };
}

export function describeBuild(build: WorkerBuild): string {
  return build.deployment
    ? `build ${build.buildId} of deployment ${build.deployment} (versioned: campaigns upgrade to the current version, short workflows stay on theirs)`
    : `build ${build.buildId} (unversioned: --deployment NAME or T1_WORKER_DEPLOYMENT turns on Worker Versioning)`;
}

/**
 * Makes `build` its deployment's current version: new workflows start on it and Auto-Upgrade ones
 * (campaigns) move to it. The server knows a version only once its workers poll, and refuses while
 * some of the deployment's task queues are not yet polled by it: retried until `timeoutMs`.
 */
export async function makeCurrent(client: Client, namespace: string, build: WorkerBuild, timeoutMs = 60_000): Promise<void> {
  if (!build.deployment) throw new UserError('--make-current needs a deployment (--deployment NAME or T1_WORKER_DEPLOYMENT)');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await client.workflowService.setWorkerDeploymentCurrentVersion({
        namespace,
        deploymentName: build.deployment,
        buildId: build.buildId,
        identity: `t1 worker ${build.buildId}`,
      });
      return;
    } catch (err) {
      if (Date.now() > deadline)
        throw new Error(`could not make ${build.buildId} current in ${build.deployment}: ${(err as Error).message}`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}
