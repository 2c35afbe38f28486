/**
 * The one cross-process lock of provisioning and the caches: a directory made atomically (mkdir),
 * holding its owner's pid. One staleness rule: a lock is stale when its owner is no longer a live
 * process (infra/process.ts pidAlive), or when it has no owner 10 s after it was made (its maker
 * died between mkdir and writing the pid); a stale lock is taken over. A live owner is never
 * robbed, however long it works. The directories are per machine (`~/.cache/t1`), as pids are.
 */
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pidAlive } from './process';

/** How long a lock directory may stay without an owner before it counts as abandoned. */
export const OWNERLESS_STALE_MS = 10_000;

export interface LockOptions {
  /** Told once when another process holds the lock, and when a stale lock is taken over. */
  log?: (line: string) => void;
  /** Gives up (throws) after waiting this long; default: waits while the owner lives. */
  timeoutMs?: number;
  /** Between tries (default 500 ms). */
  pollMs?: number;
}

export interface Lock {
  release(): void;
  /** Whether another process held it first (it may have done the work already). */
  waited: boolean;
}

/** The owner's pid, or undefined (no lock, no owner yet, or an unreadable one). */
function ownerOf(dir: string): number | undefined {
  try {
    const pid = Number(readFileSync(join(dir, 'owner'), 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** The staleness rule: a lock whose owner died, or one left without an owner for OWNERLESS_STALE_MS. */
export function isStale(dir: string, now = Date.now()): boolean {
  const stat = statSync(dir, { throwIfNoEntry: false });
  if (!stat) return false;
  const owner = ownerOf(dir);
  return owner === undefined ? now - stat.mtimeMs > OWNERLESS_STALE_MS : !pidAlive(owner);
}

export async function acquireLock(dir: string, o: LockOptions = {}): Promise<Lock> {
  const deadline = Date.now() + (o.timeoutMs ?? Infinity);
  let waited = false;
  for (;;) {
    try {
      mkdirSync(dir);
      writeFileSync(join(dir, 'owner'), `${process.pid}\n`);
      return { release: () => rmSync(dir, { recursive: true, force: true }), waited };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    if (isStale(dir)) {
      o.log?.(`taking over a stale lock ${dir}`);
      rmSync(dir, { recursive: true, force: true });
      continue;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${dir}`);
    if (!waited) o.log?.(`waiting for another process (lock ${dir}, pid ${ownerOf(dir) ?? 'unknown'})`);
    waited = true;
    await new Promise((r) => setTimeout(r, o.pollMs ?? 500));
  }
}

/** Runs `fn` holding the lock `dir`, and releases it however `fn` ends. */
export async function withLock<T>(dir: string, fn: () => Promise<T>, o: LockOptions = {}): Promise<T> {
  const lock = await acquireLock(dir, o);
  try {
    return await fn();
  } finally {
    lock.release();
  }
}
