/** How the CLI prints a failed command: one clear line for what a person can fix, a stack trace only on request. */
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure, TemporalFailure } from '@temporalio/common';
import { ZodError } from 'zod';
import { FAILURES } from '../rules/failures';
import { UserError } from '../util/errors';

/**
 * Failures printed as their message alone (no stack trace helps): the user's mistakes, every type
 * in the failure table (rules/failures.ts), and these failures of the environment.
 */
const COMPLETE_MESSAGES = new Set(['StackError', 'ProvisionError', 'EndpointError']);

export function formatError(e: unknown): string {
  if (e instanceof ZodError) {
    return `invalid input:\n${e.issues.map((i) => `  ${i.path.join('.') || '(root)'}: ${i.message}`).join('\n')}`;
  }
  if (e instanceof UserError || (e instanceof Error && (COMPLETE_MESSAGES.has(e.name) || e.name in FAILURES))) return e.message;
  // A workflow failed by a non-retryable activity failure (a user's mistake met inside a worker): its message.
  if (e instanceof WorkflowFailedError) {
    let root: unknown = e.cause;
    while (root instanceof TemporalFailure && root.cause) root = root.cause;
    if (root instanceof ApplicationFailure && root.nonRetryable) return `${e.message.replace(/\.$/, '')}: ${root.message}`;
  }
  if (e instanceof Error && (e as any).code === 'ECONNREFUSED') return `${e.message}\nIs the stack up? Run \`npx t1 stack up\`.`;
  return e instanceof Error
    ? process.env.T1_DEBUG
      ? String(e.stack)
      : `${e.name}: ${e.message} (set T1_DEBUG=1 for the stack trace)`
    : String(e);
}
