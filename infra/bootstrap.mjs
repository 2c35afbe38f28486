#!/usr/bin/env node
// Runs before `npm start` / `npm test` on any clone: installs the locked npm dependencies when
// they are missing or stale (plain Node, no dependencies, so it works on a fresh clone).
import { execSync } from 'node:child_process';
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
