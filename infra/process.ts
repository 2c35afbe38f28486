/**
 * Process helpers for provisioning and the local stack, one home for each: finding a program on
 * PATH, running one with a timeout, and telling whether a pid is still a live process.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/** The first executable file `name` on `env.PATH`, or undefined. */
export function which(name: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      if (statSync(p).isFile()) return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

export interface RunResult {
  /** The exit code; -1 when it could not be started or timed out, 128 when a signal ended it. */
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  timeoutMs: number;
}

/** Runs a command, stdin closed; resolves (never rejects) with exit code -1 on spawn errors or timeouts. Keeps the last 256 KiB of each stream. */
export function run(cmd: string, args: string[], o: RunOptions): Promise<RunResult> {
  return new Promise((resolve) => {
    let stdout = '';
    let stderr = '';
    const keep = (s: string, c: Buffer) => (s + c.toString()).slice(-256 * 1024);
    let child;
    try {
      child = spawn(cmd, args, { cwd: o.cwd, env: o.env, stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (err) {
      resolve({ code: -1, stdout: '', stderr: `${cmd}: ${errorMessage(err)}` });
      return;
    }
    const timer = setTimeout(() => {
      stderr += `\n${cmd}: timed out after ${o.timeoutMs} ms`;
      child.kill('SIGKILL');
    }, o.timeoutMs);
    child.stdout.on('data', (c: Buffer) => (stdout = keep(stdout, c)));
    child.stderr.on('data', (c: Buffer) => (stderr = keep(stderr, c)));
    child.on('error', (err) => {
      clearTimeout(timer);
      resolve({ code: -1, stdout, stderr: `${stderr}\n${cmd}: ${errorMessage(err)}` });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : -1), stdout, stderr: signal ? `${stderr}\nkilled by ${signal}` : stderr });
    });
  });
}

/** The command's stdout when it exits 0 within `timeoutMs`, else undefined. */
export async function output(cmd: string, args: string[], timeoutMs = 15_000): Promise<string | undefined> {
  const r = await run(cmd, args, { timeoutMs });
  return r.code === 0 ? r.stdout : undefined;
}

/**
 * Whether `pid` is a live process: it exists (signal 0 reaches it, or it belongs to another user)
 * and, where /proc tells, it is not a zombie.
 */
export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    return !/\) [ZX] /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true; // no /proc (macOS): signal 0 is all there is
  }
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
