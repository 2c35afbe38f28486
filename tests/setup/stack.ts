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

/**
 * Its ports; T1_TEST_PORT_OFFSET shifts all three, so that two checkouts on one machine can run
 * their integration tests at once (SeaweedFS also binds s3Port +1..+3 and +10000).
 */
const offset = Number(process.env.T1_TEST_PORT_OFFSET ?? 0);
export const TEST_STACK = { temporalPort: `${17233 + offset}`, temporalUiPort: `${18233 + offset}`, s3Port: `${18433 + offset}` };

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
