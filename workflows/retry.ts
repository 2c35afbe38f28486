/**
 * Every activity retry policy of the workflows. A user's mistake raised inside an activity is
 * already failed as non-retryable by the compute process (workers/compute); the types listed here
 * are never retried wherever they come from.
 */
import type { RetryPolicy } from '@temporalio/common';

export const NON_RETRYABLE = ['ConfigError', 'CheckpointConflictError', 'ZodError'];

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
