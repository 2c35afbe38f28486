/**
 * Every activity retry policy of the workflows. A failure the table in rules/failures.ts calls
 * non-retryable is already failed as such by the compute process (workers/compute); its types are
 * also listed here, so they are never retried wherever they come from.
 */
import type { RetryPolicy } from '@temporalio/common';
import { NON_RETRYABLE } from '../rules/failures';

export { NON_RETRYABLE };

/** Training, evaluation, synthesis and promotion: transient faults (S3, a worker restart) for up to ~25 minutes. */
export const ACTIVITY_RETRY: RetryPolicy = {
  initialInterval: '2s',
  backoffCoefficient: 2,
  maximumInterval: '1m',
  maximumAttempts: 30,
  nonRetryableErrorTypes: NON_RETRYABLE,
};

/** The wiring proof: short, so a broken setup is reported within a few minutes. */
export const PROOF_RETRY: RetryPolicy = {
  initialInterval: '1s',
  backoffCoefficient: 2,
  maximumInterval: '30s',
  maximumAttempts: 10,
  nonRetryableErrorTypes: NON_RETRYABLE,
};
