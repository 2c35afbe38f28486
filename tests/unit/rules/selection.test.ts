/**
 * Choices are made on validation; test is for the final report only. Benchmarks and preset tuning
 * runs (bench/) choose things, so none of them may read a test split.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '../../..');

describe('selection uses validation', () => {
  it('no module under bench/ names the test split', () => {
    const files = readdirSync(join(root, 'bench')).filter((f) => f.endsWith('.ts'));
    expect(files.length).toBeGreaterThan(3);
    const offenders = files.filter((f) => /['"`]test['"`]/.test(readFileSync(join(root, 'bench', f), 'utf8')));
    expect(offenders).toEqual([]);
  });
});
