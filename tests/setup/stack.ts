/**
 * Integration tests run against the real servers: this global setup provisions and starts a
 * stack of its own (own ports and state directory, so a developer's stack is left alone) and
 * stops it afterwards.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { loadStack } from '../../config/connection';
import { stackDown, stackUp } from '../../infra/stack';

export const TEST_STACK = { temporalPort: '17233', temporalUiPort: '18233', s3Port: '18433' };

export default async function setup(project: TestProject) {
  const stateDir = mkdtempSync(join(tmpdir(), 't1-test-stack-'));
  const overrides = {
    'stack.stateDir': stateDir,
    'stack.temporalPort': TEST_STACK.temporalPort,
    'stack.temporalUiPort': TEST_STACK.temporalUiPort,
    'stack.s3Port': TEST_STACK.s3Port,
  };
  const cfg = loadStack(overrides);
  const t0 = Date.now();
  await stackUp(cfg, (l) => console.log(`[stack] ${l}`));
  console.log(`[stack] up in ${((Date.now() - t0) / 1000).toFixed(1)} s (state ${stateDir})`);
  project.provide('stackOverrides', overrides);
  return async () => {
    await stackDown(cfg);
    rmSync(stateDir, { recursive: true, force: true });
  };
}

declare module 'vitest' {
  export interface ProvidedContext {
    stackOverrides: Record<string, string>;
  }
}
