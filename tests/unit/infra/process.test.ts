/** infra/process.ts and infra/lock.ts: one which, one run, one pid-alive rule, one lock with one staleness rule. */
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { acquireLock, isStale, OWNERLESS_STALE_MS, withLock } from '../../../infra/lock';
import { output, pidAlive, run, which } from '../../../infra/process';

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 't1-process-'));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A pid that was alive and has exited (and been reaped). */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '']);
  await new Promise((r) => child.on('close', r));
  return child.pid!;
}

describe('which', () => {
  it('finds executable files on PATH only', () => {
    const a = tmp();
    const b = tmp();
    writeFileSync(join(a, 'tool'), '#!/bin/sh\n');
    writeFileSync(join(b, 'tool'), '#!/bin/sh\n');
    chmodSync(join(b, 'tool'), 0o755);
    mkdirSync(join(a, 'dir'));
    expect(which('tool', { PATH: `${a}:${b}` })).toBe(join(b, 'tool'));
    expect(which('dir', { PATH: a })).toBeUndefined();
    expect(which('tool', {})).toBeUndefined();
  });
});

describe('run', () => {
  it('captures output and exit codes, and never rejects', async () => {
    expect(await run(process.execPath, ['-e', 'console.log("out"); console.error("err"); process.exit(3)'], { timeoutMs: 30_000 })).toEqual(
      {
        code: 3,
        stdout: 'out\n',
        stderr: 'err\n',
      },
    );
    const missing = await run(join(tmp(), 'missing'), [], { timeoutMs: 30_000 });
    expect(missing.code).toBe(-1);
    const slow = await run(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)'], { timeoutMs: 300 });
    expect(slow.code).not.toBe(0);
    expect(slow.stderr).toContain('timed out after 300 ms');
    expect(await output(process.execPath, ['-e', 'console.log("v1.2.3")'])).toBe('v1.2.3\n');
    expect(await output(process.execPath, ['-e', 'process.exit(1)'])).toBeUndefined();
  });
});

describe('pidAlive', () => {
  it('tells live processes from exited ones', async () => {
    expect(pidAlive(process.pid)).toBe(true);
    expect(pidAlive(await deadPid())).toBe(false);
    expect(pidAlive(0)).toBe(false);
    expect(pidAlive(-1)).toBe(false);
  });
});

describe('lock', () => {
  it('is stale when its owner died, or when it has had no owner for 10 s; never while its owner lives', async () => {
    const root = tmp();
    const dir = join(root, 'lock');
    expect(isStale(dir)).toBe(false); // no lock
    mkdirSync(dir);
    expect(isStale(dir)).toBe(false); // just made, owner not written yet
    expect(isStale(dir, Date.now() + OWNERLESS_STALE_MS + 1000)).toBe(true);
    writeFileSync(join(dir, 'owner'), `${process.pid}\n`);
    const old = new Date(Date.now() - 24 * 3600_000);
    utimesSync(dir, old, old);
    expect(isStale(dir)).toBe(false); // a live owner keeps it, however old
    writeFileSync(join(dir, 'owner'), `${await deadPid()}\n`);
    expect(isStale(dir)).toBe(true);
  });

  it('takes over a stale lock, waits for a live one, and releases however the work ends', async () => {
    const dir = join(tmp(), 'lock');
    mkdirSync(dir);
    writeFileSync(join(dir, 'owner'), `${await deadPid()}\n`);
    const log: string[] = [];
    expect(await withLock(dir, async () => readFileSync(join(dir, 'owner'), 'utf8'), { log: (l) => log.push(l) })).toBe(`${process.pid}\n`);
    expect(log).toEqual([`taking over a stale lock ${dir}`]);
    expect(existsSync(dir)).toBe(false);

    await expect(
      withLock(dir, () => {
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(existsSync(dir)).toBe(false);

    const first = await acquireLock(dir);
    expect(first.waited).toBe(false);
    await expect(acquireLock(dir, { timeoutMs: 200, pollMs: 50 })).rejects.toThrow(`timed out waiting for ${dir}`);
    const second = acquireLock(dir, { pollMs: 20 });
    setTimeout(() => first.release(), 100);
    const got = await second;
    expect(got.waited).toBe(true);
    got.release();
  });
});
