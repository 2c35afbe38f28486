import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import type { Client } from '@temporalio/client';
import { afterAll, beforeAll, inject } from 'vitest';
import { connectClient } from '../../infra/temporal';
import { CheckpointStore } from '../../storage/checkpoints';
import { startWorkers, type RunningWorkers } from '../../workers/worker';
import { loadConnection, loadStack, type ConnectionConfig, type StackConfig } from '../../config/connection';
import { loadGrants, type GrantFlags } from '../../util/grants';

/** Connection settings of the stack that tests/setup/stack.ts started. */
export function testConnection(): ConnectionConfig {
  return loadConnection(inject('stackOverrides'));
}

export function testStack(): StackConfig {
  return loadStack(inject('stackOverrides'));
}

/** A campaign name no other test run uses, so tests never see each other's checkpoints. */
export function uniqueCampaign(label: string): string {
  return `${label}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
}

/** The test stack's settings as T1_* variables, for child processes (CLI, workers). */
export function testEnv(): NodeJS.ProcessEnv {
  const o = inject('stackOverrides');
  return {
    ...process.env,
    T1_STATE_DIR: o['stack.stateDir'],
    T1_TEMPORAL_PORT: o['stack.temporalPort'],
    T1_TEMPORAL_UI_PORT: o['stack.temporalUiPort'],
    T1_S3_PORT: o['stack.s3Port'],
  };
}

/** A worker in its own process (so a test can kill -9 it), started with `t1 worker --role <role>` (a role, a comma-separated list, or all). */
export function spawnWorker(role = 'all', env: NodeJS.ProcessEnv = {}, args: string[] = []): ChildProcess & { output: () => string } {
  const child = spawn(process.execPath, ['bin/t1.js', 'worker', '--role', role, ...args], {
    cwd: process.cwd(),
    env: { ...testEnv(), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  return Object.assign(child, { output: () => out });
}

export async function killHard(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;
}

export async function waitFor<T>(what: string, f: () => Promise<T | undefined | false>, timeoutMs = 120_000, everyMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** A Temporal client and a checkpoint store on the test stack, for the lifetime of one test file. */
export function useClientAndStore(): { client: () => Client; store: CheckpointStore } {
  const conn = testConnection();
  const store = new CheckpointStore(conn.s3);
  let client: Client | undefined;
  beforeAll(async () => {
    client = await connectClient(conn.temporal);
  });
  afterAll(async () => {
    await client?.connection.close();
    store.close();
  });
  return { client: () => client!, store };
}

/** An in-process worker serving every queue, and a client, for the lifetime of one test file; `grants`: what it grants, explicitly (nothing by default). */
export function useWorkerAndClient(grants: GrantFlags = {}): { workers: () => RunningWorkers; client: () => Client } {
  let workers: RunningWorkers | undefined;
  let client: Client | undefined;
  beforeAll(async () => {
    const conn = testConnection();
    workers = await startWorkers(conn, 'all', loadGrants(grants, {}));
    client = await connectClient(conn.temporal);
  });
  afterAll(async () => {
    await client?.connection.close();
    await workers?.shutdown();
  });
  return { workers: () => workers!, client: () => client! };
}

const run = promisify(execFile);
/** Runs the t1 command against the test stack; never throws, returns exit code and output. */
export function t1(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return t1Env({}, ...args);
}

/** `t1` with extra environment variables. */
export async function t1Env(env: NodeJS.ProcessEnv, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['bin/t1.js', ...args], { env: { ...testEnv(), ...env }, timeout: 180_000 });
    return { code: 0, stdout, stderr };
  } catch (e: any) {
    return { code: e.code ?? 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}
