/**
 * Provisions the native TensorFlow backend for tfjs (`@tensorflow/tfjs-node`) without internet.
 *
 * tfjs-node 4.22's install script downloads libtensorflow 2.9.1 from storage.googleapis.com, which
 * is unreachable here, so `npm ci` leaves the optional dependency out and we fall back to wasm.
 * This step rebuilds it from registries we can reach (see infra/native-tf.md):
 *   1. the `tensorflow-cpu` wheel from PyPI (pip) carries libtensorflow_cc.so.2 (the TF C API) and
 *      libtensorflow_framework.so.2; the libs and the C headers are extracted into the per-user cache;
 *   2. the package files come from the npm registry with `npm install --no-save --ignore-scripts`
 *      (versions from our package-lock; package.json and the lockfile are left untouched);
 *   3. `deps/lib` of the package gets symlinks with the names the addon and its install script
 *      expect, pointing into the cache; `deps/include` gets the headers;
 *   4. the N-API addon is compiled offline with npm's node-gyp against the local Node headers
 *      (`--nodedir`), once per cache, and copied from the cache afterwards. It finds the libraries
 *      through its RUNPATH `$ORIGIN/../../deps/lib`, so LD_LIBRARY_PATH is not needed;
 *   5. a child process loads tfjs-node and runs a tiny op check; only then is ok:true returned.
 *
 * Idempotent: when tfjs-node already loads and passes the check, it returns after one probe
 * (about 1 s). After `npm ci` wiped node_modules it re-installs from the warm cache (a few seconds).
 * "Not available" situations (T1_NATIVE_TF=off, no pip, no compiler, no registry, unsupported
 * platform, failing probe) return `{ ok: false, reason }` and never throw: callers use wasm then.
 *
 * Script: `npx tsx infra/native-tf.ts [--project DIR] [--cache DIR] [--check] [--strict]` prints
 * progress on stderr and a one-line JSON result on stdout.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { hashFile } from '../util/file-hash';
import { acquireLock } from './lock';
import { run, which } from './process';

/** Pinned versions. The wheel is platform-specific but Python-version-agnostic for our purpose. */
export const NATIVE_TF = {
  tfjsNodeVersion: '4.22.0',
  /** The oldest tensorflow-cpu wheel that ships libtensorflow_cc.so.2 (2.9-2.11 wheels don't). */
  tensorflowVersion: '2.12.1',
  wheel: {
    file: 'tensorflow_cpu-2.12.1-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl',
    sha256: '7ffb595707a8fb376deaddc768784c7a0242b16cbc6e06393b1733b2ce19f855',
    size: 231_826_663,
    pythonVersion: '3.11',
    abi: 'cp311',
    platform: 'manylinux2014_x86_64',
  },
  /** The library version tfjs-node's scripts expect in deps/lib (their download is skipped if present). */
  libtensorflowVersion: '2.9.1',
} as const;

export interface NativeTfOptions {
  /** Project root (holds package.json and node_modules). */
  projectDir: string;
  /** Per-user cache outside the repo, e.g. ~/.cache/t1. Wheel, libs and built addon live here. */
  cacheDir: string;
  log: (line: string) => void;
  /** Only probe whether tfjs-node loads; never download, install or build anything. */
  checkOnly?: boolean;
  /** Environment to read T1_NATIVE_TF from and to pass to child processes (default process.env). */
  env?: NodeJS.ProcessEnv;
}

export interface NativeTfResult {
  ok: boolean;
  /** tfjs backend name when ok ('tensorflow'). */
  backend?: string;
  /** Why the native backend is not available (when !ok). */
  reason?: string;
  /** TF_Version reported by the loaded library. */
  tensorflowVersion?: string;
  /** True when nothing had to be changed (already in place and loading). */
  alreadyProvisioned?: boolean;
  elapsedMs?: number;
}

const PKG = '@tensorflow/tfjs-node';
const GPU_PKG = '@tensorflow/tfjs-node-gpu';
const LIBS = ['libtensorflow_cc.so.2', 'libtensorflow_framework.so.2'] as const;
/** deps/lib entry -> library in the cache. The addon's NEEDED entries are the two SONAMEs. */
const DEPS_LIB_LINKS: Record<string, (typeof LIBS)[number]> = {
  'libtensorflow_cc.so.2': 'libtensorflow_cc.so.2',
  [`libtensorflow.so.${NATIVE_TF.libtensorflowVersion}`]: 'libtensorflow_cc.so.2',
  'libtensorflow.so.2': 'libtensorflow_cc.so.2',
  'libtensorflow.so': 'libtensorflow_cc.so.2',
  'libtensorflow_framework.so.2': 'libtensorflow_framework.so.2',
  [`libtensorflow_framework.so.${NATIVE_TF.libtensorflowVersion}`]: 'libtensorflow_framework.so.2',
  'libtensorflow_framework.so': 'libtensorflow_framework.so.2',
};
/** Headers the addon includes; their transitive closure is extracted from the wheel. */
const HEADER_ROOTS = [
  'tensorflow/c/c_api.h',
  'tensorflow/c/eager/c_api.h',
  'tensorflow/c/tf_datatype.h',
  'tensorflow/c/tf_status.h',
  'tensorflow/c/tf_tensor.h',
  'tensorflow/core/platform/ctstring_internal.h',
];

/** Never throws; see the module comment. */
export async function provisionNativeTf(opts: NativeTfOptions): Promise<NativeTfResult> {
  const t0 = Date.now();
  let result: NativeTfResult;
  try {
    result = await provision(opts);
  } catch (err) {
    result = { ok: false, reason: `unexpected error: ${errMsg(err)}` };
  }
  result.elapsedMs = Date.now() - t0;
  opts.log(result.ok ? `native tf ready (${result.elapsedMs} ms)` : `native tf unavailable: ${result.reason}`);
  return result;
}

async function provision(opts: NativeTfOptions): Promise<NativeTfResult> {
  const env = opts.env ?? process.env;
  const log = opts.log;
  const setting = (env.T1_NATIVE_TF ?? '').toLowerCase();
  if (['off', '0', 'false', 'no'].includes(setting)) {
    return { ok: false, reason: `disabled by T1_NATIVE_TF=${env.T1_NATIVE_TF}` };
  }
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    return { ok: false, reason: `unsupported platform ${process.platform}-${process.arch} (only linux-x64 is provisioned)` };
  }
  const projectDir = path.resolve(opts.projectDir);
  const cacheRoot = path.join(path.resolve(opts.cacheDir), 'native-tf');
  const pkgDir = path.join(projectDir, 'node_modules', ...PKG.split('/'));

  const declared = declaredVersion(projectDir);
  if (declared === undefined) return { ok: false, reason: `${projectDir}/package.json does not declare ${PKG}` };
  if (declared !== NATIVE_TF.tfjsNodeVersion) {
    return { ok: false, reason: `package.json wants ${PKG}@${declared}; this provisioner supports ${NATIVE_TF.tfjsNodeVersion}` };
  }

  // Fast path: already in place and loading.
  const installed = installedVersion(pkgDir);
  let probeFailure = installed === undefined ? `${PKG} is not installed` : undefined;
  if (installed !== undefined) {
    const probe = await probeTfjsNode(projectDir, env);
    if (probe.ok) {
      if (!opts.checkOnly) removeBrokenGpuPackage(projectDir, log);
      return { ok: true, backend: probe.backend, tensorflowVersion: probe.tensorflowVersion, alreadyProvisioned: true };
    }
    probeFailure = probe.reason;
  }
  if (opts.checkOnly) return { ok: false, reason: probeFailure };
  // Without an installed tree, `npm install <pkg>` would install the whole project (without scripts).
  if (installedVersion(path.join(projectDir, 'node_modules', '@tensorflow', 'tfjs')) === undefined) {
    return { ok: false, reason: `${projectDir}/node_modules has no @tensorflow/tfjs: run npm ci first` };
  }
  log(`provisioning: ${probeFailure}`);

  fs.mkdirSync(cacheRoot, { recursive: true });
  const lock = await acquireLock(path.join(cacheRoot, 'lock'), { log, timeoutMs: 30 * 60_000 });
  try {
    if (lock.waited && installedVersion(pkgDir) !== undefined) {
      // Another provisioner held the lock; it may have done the work for this project already.
      const probe = await probeTfjsNode(projectDir, env);
      if (probe.ok) return { ok: true, backend: probe.backend, tensorflowVersion: probe.tensorflowVersion, alreadyProvisioned: true };
    }
    const libs = await ensureLibs(cacheRoot, env, log);
    if ('reason' in libs) return { ok: false, reason: libs.reason };

    const wasInstalled = installedVersion(pkgDir) !== undefined;
    const pkg = await ensurePackage(projectDir, pkgDir, env, log);
    if (pkg) return { ok: false, reason: pkg };
    removeBrokenGpuPackage(projectDir, log);

    const fail = (reason: string): NativeTfResult => {
      // Leave node_modules as npm left it: a half-installed tfjs-node would register kernels on import.
      if (!wasInstalled) fs.rmSync(pkgDir, { recursive: true, force: true });
      return { ok: false, reason };
    };

    fillDeps(pkgDir, libs.dir);
    const addon = await ensureAddon(cacheRoot, pkgDir, env, log);
    if (addon.error) return fail(addon.error);

    let probe = await probeTfjsNode(projectDir, env);
    if (!probe.ok && addon.fromCache) {
      log(`cached addon failed the probe (${probe.reason}); rebuilding it`);
      fs.rmSync(addonCacheDir(cacheRoot, pkgDir), { recursive: true, force: true });
      const again = await ensureAddon(cacheRoot, pkgDir, env, log);
      if (again.error) return fail(again.error);
      probe = await probeTfjsNode(projectDir, env);
    }
    if (!probe.ok) return fail(`tfjs-node does not load after provisioning: ${probe.reason}`);
    return { ok: true, backend: probe.backend, tensorflowVersion: probe.tensorflowVersion, alreadyProvisioned: false };
  } finally {
    lock.release();
  }
}

// ---------------------------------------------------------------------------------------------
// Probe

interface Probe {
  ok: boolean;
  backend?: string;
  tensorflowVersion?: string;
  reason?: string;
}

const PROBE_MARK = '@@t1-native-tf-probe@@';
const PROBE_SCRIPT = `
// As util/node-compat.ts: tfjs-node 4.22 needs util.isNullOrUndefined, which Node 23+ lacks.
Object.assign(require('util'), { isNullOrUndefined: (v) => v === null || v === undefined, isArray: Array.isArray });
const dir = process.env.T1_PROBE_DIR;
const tf = require(require.resolve('${PKG}', { paths: [dir] }));
const backend = tf.getBackend();
const c = tf.matMul(tf.tensor2d([[1, 2], [3, 4]]), tf.tensor2d([[5, 6], [7, 8]])).arraySync();
const g = tf.grad((x) => tf.sum(tf.mul(x, x)))(tf.tensor1d([1, -2, 3])).arraySync();
const ok = backend === 'tensorflow' && JSON.stringify(c) === '[[19,22],[43,50]]' && JSON.stringify(g) === '[2,-4,6]';
const tfv = tf.backend().binding && tf.backend().binding.TF_Version;
process.stdout.write('${PROBE_MARK}' + JSON.stringify({ ok, backend, tensorflowVersion: tfv, c, g }) + '\\n');
`;

/** Loads tfjs-node in a child process (a crash there cannot take us down) and runs a tiny check. */
async function probeTfjsNode(projectDir: string, env: NodeJS.ProcessEnv): Promise<Probe> {
  const childEnv: NodeJS.ProcessEnv = { ...env, T1_PROBE_DIR: projectDir, TF_CPP_MIN_LOG_LEVEL: env.TF_CPP_MIN_LOG_LEVEL ?? '2' };
  delete childEnv.LD_LIBRARY_PATH; // the addon must find libtensorflow through its RUNPATH alone
  const r = await run(process.execPath, ['-e', PROBE_SCRIPT], { cwd: projectDir, env: childEnv, timeoutMs: 120_000 });
  const line = r.stdout.split('\n').find((l) => l.startsWith(PROBE_MARK));
  if (r.code !== 0 || !line) return { ok: false, reason: `probe exited ${r.code}: ${errorLines(r.stderr || r.stdout)}` };
  const p = JSON.parse(line.slice(PROBE_MARK.length)) as {
    ok: boolean;
    backend: string;
    tensorflowVersion?: string;
    c: unknown;
    g: unknown;
  };
  if (!p.ok)
    return { ok: false, reason: `probe check failed: backend=${p.backend} matMul=${JSON.stringify(p.c)} grad=${JSON.stringify(p.g)}` };
  return { ok: true, backend: p.backend, tensorflowVersion: p.tensorflowVersion };
}

// ---------------------------------------------------------------------------------------------
// Cache: wheel -> libs + headers

interface LibsManifest {
  tensorflowVersion: string;
  wheelSha256: string;
  libs: Record<string, number>;
  headers: number;
}

async function ensureLibs(
  cacheRoot: string,
  env: NodeJS.ProcessEnv,
  log: (l: string) => void,
): Promise<{ dir: string } | { reason: string }> {
  const dir = path.join(cacheRoot, `tensorflow-cpu-${NATIVE_TF.tensorflowVersion}`);
  if (libsComplete(dir)) return { dir };

  const wheel = await ensureWheel(cacheRoot, env, log);
  if ('reason' in wheel) return wheel;

  log(`extracting ${LIBS.join(', ')} and C headers from the wheel`);
  const tmp = `${dir}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp, { recursive: true });
  const r = await run(pythonCmd(env), ['-c', EXTRACT_PY, wheel.path, tmp, JSON.stringify(LIBS), JSON.stringify(HEADER_ROOTS)], {
    env,
    timeoutMs: 300_000,
  });
  if (r.code !== 0) {
    fs.rmSync(tmp, { recursive: true, force: true });
    return { reason: `extracting the wheel failed: ${lastLines(r.stderr, 3)}` };
  }
  const extracted = JSON.parse(lastLines(r.stdout, 1)) as { headers: number; missing: string[] };
  if (extracted.missing.length) {
    fs.rmSync(tmp, { recursive: true, force: true });
    return { reason: `the wheel lacks headers: ${extracted.missing.join(', ')}` };
  }
  const manifest: LibsManifest = {
    tensorflowVersion: NATIVE_TF.tensorflowVersion,
    wheelSha256: NATIVE_TF.wheel.sha256,
    libs: Object.fromEntries(LIBS.map((l) => [l, fs.statSync(path.join(tmp, 'lib', l)).size])),
    headers: extracted.headers,
  };
  fs.writeFileSync(path.join(tmp, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
  fs.rmSync(dir, { recursive: true, force: true });
  fs.renameSync(tmp, dir);
  return { dir };
}

function libsComplete(dir: string): boolean {
  try {
    const m = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as LibsManifest;
    if (m.tensorflowVersion !== NATIVE_TF.tensorflowVersion || m.wheelSha256 !== NATIVE_TF.wheel.sha256) return false;
    return (
      LIBS.every((l) => fs.statSync(path.join(dir, 'lib', l)).size === m.libs[l]) &&
      fs.existsSync(path.join(dir, 'include', 'tensorflow', 'c', 'c_api.h'))
    );
  } catch {
    return false;
  }
}

async function ensureWheel(
  cacheRoot: string,
  env: NodeJS.ProcessEnv,
  log: (l: string) => void,
): Promise<{ path: string } | { reason: string }> {
  const wheelsDir = path.join(cacheRoot, 'wheels');
  const file = path.join(wheelsDir, NATIVE_TF.wheel.file);
  if (fs.existsSync(file)) {
    if ((await hashFile(file)).sha256 === NATIVE_TF.wheel.sha256) return { path: file };
    log(`cached wheel has a wrong sha256; downloading it again`);
    fs.rmSync(file, { force: true });
  }
  const py = pythonCmd(env);
  const pip = await run(py, ['-m', 'pip', '--version'], { env, timeoutMs: 60_000 });
  if (pip.code !== 0) return { reason: `pip is not available (${py} -m pip): ${lastLines(pip.stderr || pip.stdout, 1)}` };

  const tmp = path.join(wheelsDir, `tmp-${process.pid}`);
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp, { recursive: true });
  try {
    const req = path.join(tmp, 'requirements.txt');
    fs.writeFileSync(req, `tensorflow-cpu==${NATIVE_TF.tensorflowVersion} --hash=sha256:${NATIVE_TF.wheel.sha256}\n`);
    const mb = Math.round(NATIVE_TF.wheel.size / 1e6);
    log(`downloading tensorflow-cpu ${NATIVE_TF.tensorflowVersion} wheel (${mb} MB) with pip`);
    const w = NATIVE_TF.wheel;
    const r = await run(
      py,
      [
        '-m',
        'pip',
        'download',
        '--no-deps',
        '--only-binary=:all:',
        '--require-hashes',
        '--no-cache-dir',
        '--progress-bar',
        'off',
        '--disable-pip-version-check',
        '--python-version',
        w.pythonVersion,
        '--implementation',
        'cp',
        '--abi',
        w.abi,
        '--platform',
        w.platform,
        '-r',
        req,
        '-d',
        tmp,
      ],
      { env, timeoutMs: 1_800_000 },
    );
    const got = path.join(tmp, w.file);
    if (r.code !== 0 || !fs.existsSync(got)) return { reason: `pip download failed: ${lastLines(r.stderr || r.stdout, 3)}` };
    if ((await hashFile(got)).sha256 !== w.sha256) return { reason: `downloaded wheel has a wrong sha256` };
    fs.renameSync(got, file);
    return { path: file };
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/** argv: wheel, dest, libs (JSON), header roots (JSON). Prints {"headers": n, "missing": [...]}. */
const EXTRACT_PY = String.raw`
import json, os, re, shutil, sys, zipfile
whl, dest, libs, roots = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4])
z = zipfile.ZipFile(whl)
names = set(z.namelist())
P = 'tensorflow/include/'
def copy(member, out):
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with z.open(member) as src, open(out, 'wb') as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
for lib in libs:
    copy('tensorflow/' + lib, os.path.join(dest, 'lib', lib))
seen, todo, missing = set(), list(roots), []
while todo:
    h = todo.pop()
    if h in seen:
        continue
    seen.add(h)
    if P + h not in names:
        missing.append(h)
        continue
    data = z.read(P + h)
    todo.extend(m.decode() for m in re.findall(rb'^\s*#\s*include\s+"([^"]+)"', data, re.M))
    copy(P + h, os.path.join(dest, 'include', h))
print(json.dumps({'headers': len(seen) - len(missing), 'missing': missing}))
`;

// ---------------------------------------------------------------------------------------------
// Package files, deps/, addon

async function ensurePackage(
  projectDir: string,
  pkgDir: string,
  env: NodeJS.ProcessEnv,
  log: (l: string) => void,
): Promise<string | undefined> {
  if (installedVersion(pkgDir) === NATIVE_TF.tfjsNodeVersion) return undefined;
  const npm = npmCommand(env);
  log(`installing ${PKG}@${NATIVE_TF.tfjsNodeVersion} package files (npm install --no-save --ignore-scripts)`);
  const r = await run(
    npm.cmd,
    [
      ...npm.args,
      'install',
      '--no-save',
      '--ignore-scripts',
      '--no-audit',
      '--no-fund',
      '--prefer-offline',
      '--loglevel=error',
      `${PKG}@${NATIVE_TF.tfjsNodeVersion}`,
    ],
    { cwd: projectDir, env: npmEnv(env), timeoutMs: 600_000 },
  );
  if (r.code !== 0) return `npm install of ${PKG} failed: ${lastLines(r.stderr || r.stdout, 3)}`;
  const v = installedVersion(pkgDir);
  return v === NATIVE_TF.tfjsNodeVersion ? undefined : `npm install left ${PKG}@${v ?? 'nothing'} in node_modules`;
}

/** npm install --ignore-scripts also restores tfjs-node-gpu from the lockfile, without its addon.
 *  Importing such a package registers its kernels and then throws, and the later tfjs-node import
 *  re-registers them with hundreds of warnings: remove it unless it has a built addon. */
function removeBrokenGpuPackage(projectDir: string, log: (l: string) => void): void {
  const dir = path.join(projectDir, 'node_modules', ...GPU_PKG.split('/'));
  if (!fs.existsSync(path.join(dir, 'package.json'))) return;
  const lib = path.join(dir, 'lib');
  const hasAddon = fs.existsSync(lib) && fs.readdirSync(lib).some((d) => fs.existsSync(path.join(lib, d, 'tfjs_binding.node')));
  if (hasAddon) return;
  log(`removing ${GPU_PKG} (installed without its addon; it cannot load)`);
  fs.rmSync(dir, { recursive: true, force: true });
}

function fillDeps(pkgDir: string, libsDir: string): void {
  const deps = path.join(pkgDir, 'deps');
  fs.rmSync(deps, { recursive: true, force: true });
  fs.mkdirSync(path.join(deps, 'lib'), { recursive: true });
  for (const [name, target] of Object.entries(DEPS_LIB_LINKS)) {
    fs.symlinkSync(path.join(libsDir, 'lib', target), path.join(deps, 'lib', name));
  }
  fs.cpSync(path.join(libsDir, 'include'), path.join(deps, 'include'), { recursive: true });
}

/** napi build version as node-pre-gyp's binary.find() picks it: the highest supported one. */
function napiBuildVersion(pkgDir: string): number {
  const pj = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8')) as { binary: { napi_versions: number[] } };
  const runtime = Number(process.versions.napi);
  return Math.max(...pj.binary.napi_versions.filter((v) => v <= runtime));
}

function addonCacheDir(cacheRoot: string, pkgDir: string): string {
  const key = `tfjs-node-${NATIVE_TF.tfjsNodeVersion}_tf-${NATIVE_TF.tensorflowVersion}_napi-v${napiBuildVersion(pkgDir)}_${process.platform}-${process.arch}`;
  return path.join(cacheRoot, 'addons', key);
}

/** Copies the addon from the cache, or builds it with node-gyp (offline) and caches it. */
async function ensureAddon(
  cacheRoot: string,
  pkgDir: string,
  env: NodeJS.ProcessEnv,
  log: (l: string) => void,
): Promise<{ error?: string; fromCache: boolean }> {
  const napi = napiBuildVersion(pkgDir);
  const moduleDir = path.join(pkgDir, 'lib', `napi-v${napi}`);
  const target = path.join(moduleDir, 'tfjs_binding.node');
  const cached = path.join(addonCacheDir(cacheRoot, pkgDir), 'tfjs_binding.node');
  if (fs.existsSync(cached)) {
    fs.mkdirSync(moduleDir, { recursive: true });
    fs.copyFileSync(cached, target);
    log(`addon copied from cache`);
    return { fromCache: true };
  }
  const fail = (error: string) => ({ error, fromCache: false });
  const gyp = nodeGypScript(env);
  if (!gyp) return fail('node-gyp not found (looked next to npm)');
  const nodedir = nodeHeadersDir(env);
  if (!nodedir) return fail(`Node ${process.version} headers not found locally (include/node/common.gypi); node-gyp would download them`);
  for (const tool of ['make', 'g++']) {
    const t = await run(tool, ['--version'], { env, timeoutMs: 30_000 });
    if (t.code !== 0) return fail(`${tool} is not available: cannot compile the tfjs-node addon`);
  }
  log(`compiling the tfjs-node addon with node-gyp (nodedir ${nodedir}, napi v${napi})`);
  const r = await run(
    process.execPath,
    [
      gyp,
      'rebuild',
      `--nodedir=${nodedir}`,
      '--module_name=tfjs_binding',
      `--module_path=${moduleDir}`,
      `--napi_build_version=${napi}`,
      '-j',
      String(Math.max(1, os.availableParallelism?.() ?? os.cpus().length)),
    ],
    { cwd: pkgDir, env: { ...npmEnv(env), PYTHON: env.PYTHON ?? pythonCmd(env) }, timeoutMs: 900_000 },
  );
  if (r.code !== 0 || !fs.existsSync(target)) return fail(`node-gyp build failed: ${lastLines(r.stderr || r.stdout, 5)}`);
  fs.rmSync(path.join(pkgDir, 'build'), { recursive: true, force: true });
  const dir = path.dirname(cached);
  fs.mkdirSync(dir, { recursive: true });
  const tmp = `${cached}.tmp-${process.pid}`;
  fs.copyFileSync(target, tmp);
  fs.renameSync(tmp, cached);
  return { fromCache: false };
}

// ---------------------------------------------------------------------------------------------
// Helpers

function declaredVersion(projectDir: string): string | undefined {
  try {
    const pj = JSON.parse(fs.readFileSync(path.join(projectDir, 'package.json'), 'utf8')) as Record<
      string,
      Record<string, string> | undefined
    >;
    return pj.optionalDependencies?.[PKG] ?? pj.dependencies?.[PKG] ?? pj.devDependencies?.[PKG];
  } catch {
    return undefined;
  }
}

function installedVersion(pkgDir: string): string | undefined {
  try {
    return (JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8')) as { version?: string }).version;
  } catch {
    return undefined;
  }
}

function pythonCmd(env: NodeJS.ProcessEnv): string {
  return env.T1_PYTHON || 'python3';
}

/** npm's CLI script: npm_execpath when run under npm (not npx's), else the `npm` on PATH. */
function npmCliScript(env: NodeJS.ProcessEnv): string | undefined {
  const exec = env.npm_execpath;
  if (exec && path.basename(exec) === 'npm-cli.js' && fs.existsSync(exec)) return exec;
  const bin = which('npm', env);
  if (!bin) return undefined;
  const real = fs.realpathSync(bin);
  if (real.endsWith('.js')) return real;
  const guess = path.join(path.dirname(path.dirname(real)), 'lib', 'node_modules', 'npm', 'bin', 'npm-cli.js');
  return fs.existsSync(guess) ? guess : undefined;
}

function npmCommand(env: NodeJS.ProcessEnv): { cmd: string; args: string[] } {
  const cli = npmCliScript(env);
  return cli ? { cmd: process.execPath, args: [cli] } : { cmd: 'npm', args: [] };
}

/** Drops what npm/npx exports for lifecycle scripts (npm_command, npm_config_call, ...). */
function npmEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(env)) {
    if (/^npm_(lifecycle_|package_|command$|config_call$)/.test(k)) continue;
    out[k] = v;
  }
  return out;
}

function nodeGypScript(env: NodeJS.ProcessEnv): string | undefined {
  const candidates: string[] = [];
  if (env.npm_config_node_gyp) candidates.push(env.npm_config_node_gyp);
  const cli = npmCliScript(env);
  if (cli) candidates.push(path.join(path.dirname(path.dirname(cli)), 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  candidates.push(
    path.join(path.dirname(path.dirname(process.execPath)), 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  );
  return candidates.find((c) => c.endsWith('.js') && fs.existsSync(c));
}

/** A directory with include/node/{common.gypi,node_api.h}; the running Node's own version first. */
function nodeHeadersDir(env: NodeJS.ProcessEnv): string | undefined {
  const v = process.version.slice(1);
  const prefixVar = (process.config.variables as unknown as Record<string, unknown>).node_prefix;
  const candidates = [
    env.npm_config_nodedir,
    typeof prefixVar === 'string' ? prefixVar : undefined,
    path.dirname(path.dirname(process.execPath)),
    path.join(env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'node-gyp', v),
    path.join(os.homedir(), '.node-gyp', v),
  ].filter((c): c is string => !!c);
  const usable = candidates.filter(
    (d) => fs.existsSync(path.join(d, 'include', 'node', 'common.gypi')) && fs.existsSync(path.join(d, 'include', 'node', 'node_api.h')),
  );
  const version = (d: string): string | undefined => {
    try {
      const h = fs.readFileSync(path.join(d, 'include', 'node', 'node_version.h'), 'utf8');
      const n = (k: string) => h.match(new RegExp(`#define NODE_${k}_VERSION (\\d+)`))?.[1];
      return `${n('MAJOR')}.${n('MINOR')}.${n('PATCH')}`;
    } catch {
      return undefined;
    }
  };
  return usable.find((d) => version(d) === v) ?? usable[0];
}

function lastLines(s: string, n: number): string {
  return s
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .slice(-n)
    .join(' | ');
}

/** The first error lines of a Node stack dump (the message), else the last lines. */
function errorLines(s: string): string {
  const errs = s
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => /^(\w*Error|error)\b|Error:/.test(l) && !/^at /.test(l));
  return errs.length ? errs.slice(0, 2).join(' | ') : lastLines(s, 3);
}

function errMsg(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 't1');
}

// ---------------------------------------------------------------------------------------------
// Script entry: npx tsx infra/native-tf.ts [--project DIR] [--cache DIR] [--check] [--strict]

const thisFile = fileURLToPath(import.meta.url);
if (process.argv[1] && path.resolve(process.argv[1]) === thisFile) {
  const argv = process.argv.slice(2);
  const opt = (name: string) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const projectDir = opt('--project') ?? path.resolve(path.dirname(thisFile), '..');
  const cacheDir = opt('--cache') ?? defaultCacheDir();
  const t0 = Date.now();
  const result = await provisionNativeTf({
    projectDir,
    cacheDir,
    checkOnly: argv.includes('--check'),
    log: (l) => process.stderr.write(`[native-tf +${((Date.now() - t0) / 1000).toFixed(1)}s] ${l}\n`),
  });
  process.stdout.write(JSON.stringify(result) + '\n');
  process.exitCode = !result.ok && argv.includes('--strict') ? 1 : 0;
}
