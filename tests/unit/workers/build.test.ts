import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { deploymentOptions, sourceHash, workerBuild } from '../../../workers/build';

let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 't1-build-'));
  writeFileSync(join(root, 'package.json'), JSON.stringify({ version: '1.2.3' }));
  mkdirSync(join(root, 'workflows'));
  writeFileSync(join(root, 'workflows', 'campaign.ts'), 'export const a = 1;\n');
  mkdirSync(join(root, 'tests'));
  writeFileSync(join(root, 'tests', 'x.test.ts'), 'test\n');
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

describe('worker build (Worker Versioning)', () => {
  it('derives the build id from the package version and a hash of the code, not of tests or docs', () => {
    const id = workerBuild({}, {}, root).buildId;
    expect(id).toMatch(/^1\.2\.3-[0-9a-f]{12}$/);
    expect(id.slice(6)).toBe(sourceHash(root).slice(0, 12));
    writeFileSync(join(root, 'tests', 'x.test.ts'), 'changed\n');
    writeFileSync(join(root, 'README.md'), 'prose\n');
    expect(workerBuild({}, {}, root).buildId).toBe(id);
    writeFileSync(join(root, 'workflows', 'campaign.ts'), 'export const a = 2;\n');
    expect(workerBuild({}, {}, root).buildId).not.toBe(id);
    // A file's name is part of the hash: a rename is a new build.
    const renamed = sourceHash(root);
    rmSync(join(root, 'workflows', 'campaign.ts'));
    writeFileSync(join(root, 'workflows', 'campaign2.ts'), 'export const a = 2;\n');
    expect(sourceHash(root)).not.toBe(renamed);
  });

  it('is unversioned without a deployment; flags win over the environment', () => {
    expect(workerBuild({ buildId: 'b1' }, {}, root)).toEqual({ deployment: undefined, buildId: 'b1' });
    expect(deploymentOptions(workerBuild({ buildId: 'b1' }, {}, root))).toBeUndefined();
    const env = { T1_WORKER_DEPLOYMENT: 't1', T1_BUILD_ID: 'from-env' };
    expect(workerBuild({}, env, root)).toEqual({ deployment: 't1', buildId: 'from-env' });
    const b = workerBuild({ buildId: 'from-flag' }, env, root);
    expect(b).toEqual({ deployment: 't1', buildId: 'from-flag' });
    expect(deploymentOptions(b)).toEqual({
      version: { deploymentName: 't1', buildId: 'from-flag' },
      useWorkerVersioning: true,
      defaultVersioningBehavior: 'PINNED',
    });
  });

  it('refuses names Temporal or Kubernetes would not take, naming the flag', () => {
    expect(() => workerBuild({ deployment: '__t1' }, {}, root)).toThrow(/--deployment \(T1_WORKER_DEPLOYMENT\): .*got "__t1"/);
    expect(() => workerBuild({}, { T1_BUILD_ID: 'a/b' }, root)).toThrow(/--build-id \(T1_BUILD_ID\): .*got "a\/b"/);
  });
});
