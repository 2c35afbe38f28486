import { ApplicationFailure, CancelledFailure } from '@temporalio/activity';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../config/connection';
import { fromError, toFailure } from '../../../workers/compute';

/** An error thrown in a compute process, as the parent worker's activity rethrows it. */
const across = (err: unknown) => toFailure(structuredClone(fromError(err)));

describe('errors across the compute-process boundary', () => {
  it('keep the class name as the failure type, so the workflow retry policy still matches it', () => {
    const f = across(new ConfigError('rl.lr: expected a positive number'));
    expect(f).toBeInstanceOf(ApplicationFailure);
    expect((f as ApplicationFailure).type).toBe('ConfigError');
    expect(f.message).toBe('rl.lr: expected a positive number');
    expect((f as ApplicationFailure).nonRetryable).toBe(false); // the policy's nonRetryableErrorTypes decides
    expect(f.stack).toContain('compute.test.ts'); // the child's stack, not the parent's
  });

  it('keep an ApplicationFailure type and its non-retryable flag', () => {
    const f = across(ApplicationFailure.nonRetryable('bad input file', 'InputError')) as ApplicationFailure;
    expect([f.type, f.nonRetryable, f.message]).toEqual(['InputError', true, 'bad input file']);
  });

  it('turn a cancellation back into a CancelledFailure, and a thrown non-error into a message', () => {
    expect(across(new CancelledFailure('stopped at step 3/8'))).toBeInstanceOf(CancelledFailure);
    expect(across('plain string').message).toBe('plain string');
  });
});
