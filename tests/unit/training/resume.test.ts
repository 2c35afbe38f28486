import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const worker = join(import.meta.dirname, 'resume-worker.ts');
const dir = mkdtempSync(join(tmpdir(), 't1-resume-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** One training segment in a fresh Node process (tsx loader). */
async function segment(...args: string[]): Promise<{ step: number; sha256: string }> {
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', worker, ...args], {
    cwd: join(import.meta.dirname, '../../..'),
  });
  return JSON.parse(stdout.trim().split('\n').at(-1)!);
}

describe('exact resume across processes', () => {
  it.each(['wasm', 'cpu'])('%s: 10 steps straight == 6 steps, save, load in a fresh process, 4 steps (bitwise)', async (backend) => {
    const file = join(dir, `${backend}.state`);
    const [straight, first] = await Promise.all([segment(backend, 'straight', '10'), segment(backend, 'first', '6', file)]);
    const resumed = await segment(backend, 'resume', '4', file);
    expect(first.step).toBe(6);
    expect(resumed).toEqual(straight); // weights, Adam moments, step, Prng, data cursor: same bytes
    expect(first.sha256).not.toBe(straight.sha256);
  });
});
