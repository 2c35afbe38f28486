import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import { loadConnection, loadStack, type ConnectionConfig, type StackConfig } from '../../config/connection';

/** Connection settings of the stack that tests/setup/stack.ts started. */
export function testConnection(): ConnectionConfig {
  return loadConnection(inject('stackOverrides'));
}

export function testStack(): StackConfig {
  return loadStack(inject('stackOverrides'));
}

/** A campaign name no other test run uses, so tests never see each other's checkpoints. */
export function uniqueCampaign(label: string): string {
  return `${label}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
}
