/** `t1 campaign start` refuses a bad --id or --seed before it contacts Temporal or S3 (none is running here). */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '../..');
const start = (...args: string[]) =>
  spawnSync(process.execPath, [join(ROOT, 'bin/t1.js'), 'campaign', 'start', ...args], {
    encoding: 'utf8',
    cwd: ROOT,
    // An address where nothing listens: reaching it would fail with a connection error instead.
    env: { ...process.env, T1_TEMPORAL_ADDRESS: '127.0.0.1:9' },
  });

describe('campaign start arguments', () => {
  it('refuses an id that cannot name checkpoints, with one line naming --id', () => {
    for (const id of ['bad id', 'a/b', '-lead', 'x'.repeat(65)]) {
      const r = start(`--id=${id}`);
      expect(r.status).toBe(1);
      expect(r.stderr.trim()).toBe(
        `t1 campaign start: --id: expected 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit, got ${JSON.stringify(id)}`,
      );
    }
  });

  it('refuses a bad seed the same way', () => {
    const r = start('--seed=-3');
    expect(r.status).toBe(1);
    expect(r.stderr.trim()).toBe('t1 campaign start: --seed: expected a non-negative integer, got "-3"');
  });
});
