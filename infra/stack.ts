/**
 * The local stack: a Temporal dev server (SQLite file, web UI, our search attributes) and a
 * SeaweedFS S3 server, both on 127.0.0.1, data/pids/logs in the state directory. `up` is idempotent,
 * `down` stops only processes that `up` started (pid file + matching command line).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync, closeSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { CreateBucketCommand, HeadBucketCommand } from '@aws-sdk/client-s3';
import { Connection } from '@temporalio/client';
import { localCredentialsPath, loadConnection, type StackConfig } from '../config/connection';
import { SEARCH_ATTRIBUTE_FLAGS } from '../config/search-attributes';
import { makeS3Client } from '../storage/s3';
import { pidAlive } from './process';
import { provision, type Binaries } from './provision';

type Service = 'temporal' | 's3';

export interface StackStatus {
  temporal: { healthy: boolean; address: string; uiUrl: string; namespace: string; managed: boolean; pid?: number; log: string };
  s3: { healthy: boolean; endpoint: string; bucket: string; managed: boolean; pid?: number; log: string };
  stateDir: string;
}

export class StackError extends Error {
  override name = 'StackError';
}

interface PidFile {
  pid: number;
  bin: string;
  ports: number[];
}

const pidPath = (cfg: StackConfig, s: Service) => join(cfg.stateDir, `${s}.pid`);
const logPath = (cfg: StackConfig, s: Service) => join(cfg.stateDir, `${s}.log`);

/** Ports a service binds; checked before start so a clash gives a clear error. */
function ports(cfg: StackConfig, s: Service): { port: number; field: string }[] {
  if (s === 'temporal')
    return [
      { port: cfg.temporalPort, field: 'stack.temporalPort [T1_TEMPORAL_PORT]' },
      { port: cfg.temporalUiPort, field: 'stack.temporalUiPort [T1_TEMPORAL_UI_PORT]' },
    ];
  // s3, master, volume, filer and each one's gRPC port at +10000.
  return [0, 1, 2, 3]
    .flatMap((i) => [cfg.s3Port + i, cfg.s3Port + i + 10000])
    .map((port) => ({ port, field: 'stack.s3Port [T1_S3_PORT] (uses s3Port..s3Port+3 and +10000 each)' }));
}

/**
 * The state directory holds the generated S3 credentials, pid files and data: owner only (0700),
 * also when it was there before with a wider mode.
 */
export function ensureStateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
}

export async function stackUp(cfg: StackConfig, log: (line: string) => void = () => {}): Promise<StackStatus> {
  ensureStateDir(cfg.stateDir);
  const bins = await provision(cfg.cacheDir, log);
  ensureCredentials(cfg);
  for (const s of ['temporal', 's3'] as const) {
    if (running(cfg, s)) continue;
    for (const { port, field } of ports(cfg, s)) {
      if (!(await portFree(port)))
        throw new StackError(
          `Cannot start ${s}: port ${port} (${field}) is already in use by another process. Stop it or choose another port.${ephemeralHint(port, ephemeralRange())}`,
        );
    }
    start(cfg, s, bins);
  }
  const deadline = Date.now() + 90_000;
  for (;;) {
    const st = await stackStatus(cfg);
    if (st.temporal.healthy && st.s3.healthy) return st;
    for (const s of ['temporal', 's3'] as const) {
      if (!running(cfg, s)) throw new StackError(`${s} exited during start; last log lines:\n${tail(logPath(cfg, s))}`);
    }
    if (st.s3.pid && !st.s3.healthy) await createBucket(cfg);
    if (Date.now() > deadline) {
      const bad = st.temporal.healthy ? 's3' : 'temporal';
      throw new StackError(`${bad} did not become healthy within 90 s; last log lines:\n${tail(logPath(cfg, bad))}`);
    }
    await sleep(500);
  }
}

export async function stackDown(cfg: StackConfig): Promise<{ stopped: Service[] }> {
  const stopped: Service[] = [];
  for (const s of ['temporal', 's3'] as const) {
    const p = running(cfg, s);
    if (p) {
      await stopProcess(p.pid);
      stopped.push(s);
    }
    rmSync(pidPath(cfg, s), { force: true });
  }
  return { stopped };
}

/** Stops one service, as a crash would (tests: restart Temporal, S3 outage). */
export async function stopService(cfg: StackConfig, s: Service, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  const p = running(cfg, s);
  if (p) await stopProcess(p.pid, signal);
  rmSync(pidPath(cfg, s), { force: true });
}

/** Starts one stopped service again and waits until it is healthy. */
export async function startService(cfg: StackConfig, s: Service): Promise<void> {
  if (!running(cfg, s)) start(cfg, s, await provision(cfg.cacheDir));
  const deadline = Date.now() + 90_000;
  while (!(await stackStatus(cfg))[s].healthy) {
    if (Date.now() > deadline) throw new StackError(`${s} did not become healthy within 90 s:\n${tail(logPath(cfg, s))}`);
    await sleep(300);
  }
}

export async function stackStatus(cfg: StackConfig): Promise<StackStatus> {
  const conn = connectionFor(cfg);
  const t = running(cfg, 'temporal');
  const s = running(cfg, 's3');
  return {
    temporal: {
      healthy: await temporalHealthy(conn.temporal.address),
      address: conn.temporal.address,
      uiUrl: conn.temporal.uiUrl,
      namespace: conn.temporal.namespace,
      managed: !!t,
      ...(t ? { pid: t.pid } : {}),
      log: logPath(cfg, 'temporal'),
    },
    s3: {
      healthy: await s3Healthy(cfg),
      endpoint: conn.s3.endpoint,
      bucket: conn.s3.bucket,
      managed: !!s,
      ...(s ? { pid: s.pid } : {}),
      log: logPath(cfg, 's3'),
    },
    stateDir: cfg.stateDir,
  };
}

/** Stack ports as T1_* variables, so a connection for this stack is derived from its settings. */
function localEnv(cfg: StackConfig): Record<string, string> {
  return { T1_TEMPORAL_PORT: String(cfg.temporalPort), T1_TEMPORAL_UI_PORT: String(cfg.temporalUiPort), T1_S3_PORT: String(cfg.s3Port) };
}

/**
 * Task-queue priority (`campaign start --priority`) is strict only within a partition: one
 * partition per queue (the dev server's default is 4, for throughput this one process does not need).
 */
const TEMPORAL_DYNAMIC_CONFIG = ['matching.numTaskqueueReadPartitions=1', 'matching.numTaskqueueWritePartitions=1'];

function start(cfg: StackConfig, s: Service, bins: Binaries): void {
  const out = openSync(logPath(cfg, s), 'a');
  let bin: string;
  let args: string[];
  if (s === 'temporal') {
    bin = bins.temporal;
    args = [
      'server',
      'start-dev',
      '--ip',
      '127.0.0.1',
      '--port',
      String(cfg.temporalPort),
      '--ui-port',
      String(cfg.temporalUiPort),
      '--db-filename',
      join(cfg.stateDir, 'temporal.sqlite'),
      '--log-level',
      'warn',
      '--ui-disable-news-fetch',
      ...SEARCH_ATTRIBUTE_FLAGS.flatMap((f) => ['--search-attribute', f]),
      ...TEMPORAL_DYNAMIC_CONFIG.flatMap((kv) => ['--dynamic-config-value', kv]),
      ...(cfg.uiCodecEndpoint ? ['--ui-codec-endpoint', cfg.uiCodecEndpoint] : []), // the UI decodes through `t1 codec-server`
    ];
  } else {
    bin = bins.weed;
    const data = join(cfg.stateDir, 's3');
    mkdirSync(data, { recursive: true });
    const p = cfg.s3Port;
    args = [
      'server',
      '-ip=127.0.0.1',
      '-ip.bind=127.0.0.1',
      `-dir=${data}`,
      `-master.port=${p + 1}`,
      `-volume.port=${p + 2}`,
      '-filer',
      `-filer.port=${p + 3}`,
      '-s3',
      `-s3.port=${p}`,
      '-s3.port.iceberg=0',
      '-s3.port.lance=0',
      `-s3.config=${join(cfg.stateDir, 's3-identities.json')}`,
      '-volume.max=0',
      '-master.volumeSizeLimitMB=1024',
    ];
  }
  const child = spawn(bin, args, { detached: true, stdio: ['ignore', out, out], cwd: cfg.stateDir });
  closeSync(out);
  child.unref();
  const pf: PidFile = { pid: child.pid!, bin, ports: ports(cfg, s).map((x) => x.port) };
  writeFileSync(pidPath(cfg, s), JSON.stringify(pf));
}

/** The pid file's process, if it is still the binary we started (pids get reused). */
function running(cfg: StackConfig, s: Service): PidFile | undefined {
  const p = pidPath(cfg, s);
  if (!existsSync(p)) return undefined;
  const pf = JSON.parse(readFileSync(p, 'utf8')) as PidFile;
  if (!pidAlive(pf.pid)) return undefined;
  try {
    const cmd = readFileSync(`/proc/${pf.pid}/cmdline`, 'utf8');
    return cmd.split('\0')[0] === pf.bin ? pf : undefined;
  } catch {
    return undefined;
  }
}

async function stopProcess(pid: number, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  try {
    process.kill(-pid, signal); // the whole process group: it was started detached
  } catch {
    process.kill(pid, signal);
  }
  const deadline = Date.now() + 15_000;
  while (pidAlive(pid)) {
    if (Date.now() > deadline) {
      process.kill(-pid, 'SIGKILL');
      await sleep(200);
      break;
    }
    await sleep(100);
  }
}

/** Random credentials for the local S3 server, kept in the state dir with mode 0600. */
function ensureCredentials(cfg: StackConfig): void {
  const p = localCredentialsPath(cfg.stateDir);
  if (!existsSync(p)) {
    const creds = {
      accessKeyId: `T1${randomBytes(9).toString('hex').toUpperCase()}`,
      secretAccessKey: randomBytes(24).toString('base64url'),
    };
    writeFileSync(p, JSON.stringify(creds), { mode: 0o600 });
  }
  const { accessKeyId, secretAccessKey } = JSON.parse(readFileSync(p, 'utf8'));
  const identities = {
    identities: [
      {
        name: 't1',
        credentials: [{ accessKey: accessKeyId, secretKey: secretAccessKey }],
        actions: ['Admin', 'Read', 'Write', 'List', 'Tagging'],
      },
    ],
  };
  const ip = join(cfg.stateDir, 's3-identities.json');
  writeFileSync(ip, JSON.stringify(identities), { mode: 0o600 });
  chmodSync(ip, 0o600);
}

function connectionFor(cfg: StackConfig) {
  return loadConnection({ 'stack.stateDir': cfg.stateDir, 'stack.cacheDir': cfg.cacheDir }, { ...process.env, ...localEnv(cfg) });
}

async function createBucket(cfg: StackConfig): Promise<void> {
  const { s3 } = connectionFor(cfg);
  const client = makeS3Client(s3);
  try {
    await client.send(new CreateBucketCommand({ Bucket: s3.bucket }));
  } catch {
    // not ready yet, or already there: the health check decides
  } finally {
    client.destroy();
  }
}

async function s3Healthy(cfg: StackConfig): Promise<boolean> {
  let client;
  try {
    const { s3 } = connectionFor(cfg);
    client = makeS3Client(s3, { timeoutMs: 2000 });
    await client.send(new HeadBucketCommand({ Bucket: s3.bucket }));
    return true;
  } catch {
    return false;
  } finally {
    client?.destroy();
  }
}

async function temporalHealthy(address: string): Promise<boolean> {
  let conn: Connection | undefined;
  try {
    conn = await Connection.connect({ address, connectTimeout: 2000 });
    const r = await conn.healthService.check({});
    return r.status === 1; // SERVING
  } catch {
    return false;
  } finally {
    await conn?.close();
  }
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ port, host: '127.0.0.1', exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

/** The OS hands ports in this range to outgoing connections, so a server port there can be taken at any moment. */
function ephemeralRange(): [number, number] | undefined {
  try {
    const [lo, hi] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    return Number.isInteger(lo) && Number.isInteger(hi) ? [lo!, hi!] : undefined;
  } catch {
    return undefined;
  }
}

export function ephemeralHint(port: number, range: [number, number] | undefined): string {
  if (!range || port < range[0] || port > range[1]) return '';
  return ` Port ${port} is in this machine's ephemeral range ${range[0]}-${range[1]}, where outgoing connections take ports at random; choose ports below ${range[0]} (for stack.s3Port, below ${range[0] - 10003}).`;
}

function tail(path: string, n = 15): string {
  if (!existsSync(path)) return '(no log)';
  return readFileSync(path, 'utf8').trim().split('\n').slice(-n).join('\n');
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
