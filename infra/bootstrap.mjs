#!/usr/bin/env node
// Runs before `npm start` / `npm test` / `npm run bench` on any clone: installs the locked npm
// dependencies when they are missing or stale, rebuilds the compiled CLI when stale, then the
// native TensorFlow backend where it can be built here (plain Node, no dependencies, so it works
// on a fresh clone).
import { execSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const lock = readFileSync(join(root, 'package-lock.json'));
const stamp = join(root, 'node_modules', '.t1-lock-sha256');
const want = createHash('sha256').update(lock).digest('hex');

if (!existsSync(stamp) || readFileSync(stamp, 'utf8') !== want) {
  console.error('[bootstrap] installing npm dependencies (npm ci) …');
  // tfjs-node(-gpu) are optional: their download fails offline and npm leaves them out.
  execSync('npm ci --no-audit --no-fund --loglevel=error', { cwd: root, stdio: 'inherit' });
  writeFileSync(stamp, want);
}

// The compiled CLI (infra/build-cli.mjs; `npm ci` builds it too): rebuilt when a source changed since.
spawnSync(process.execPath, [join(root, 'infra', 'build-cli.mjs'), '--if-stale'], { cwd: root, stdio: 'inherit' });

// tfjs-node on the tensorflow-cpu wheel's library (infra/native-tf.md): about 5x wasm. A no-op
// when in place; on failure t1 falls back to wasm and says so. T1_NATIVE_TF=off skips it.
const r = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'infra', 'native-tf.ts')], {
  cwd: root,
  stdio: ['ignore', 'pipe', 'pipe'],
  encoding: 'utf8',
});
const result = (() => {
  try {
    return JSON.parse(r.stdout.trim().split('\n').pop() ?? '');
  } catch {
    return { ok: false, reason: (r.stderr || 'no output').trim().split('\n').slice(-3).join(' | ') };
  }
})();
// CI tests what production runs: there (CI set) or with T1_NATIVE_TF=require, no native backend is a failure, not a fallback.
const required = process.env.T1_NATIVE_TF === 'require' || (process.env.CI && process.env.T1_NATIVE_TF === undefined);
if (!result.ok && required) {
  console.error(`[bootstrap] native TensorFlow backend unavailable (${result.reason}); required here (CI, or T1_NATIVE_TF=require)`);
  process.exit(1);
}
if (!result.ok) console.error(`[bootstrap] native TensorFlow backend unavailable (${result.reason}); using wasm`);
else if (!result.alreadyProvisioned) console.error(`[bootstrap] native TensorFlow backend ready (tensorflow ${result.tensorflowVersion})`);
