import { ApplicationFailure, CancelledFailure } from '@temporalio/activity';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { S3ServiceException } from '@aws-sdk/client-s3';
import { StateError } from '../../../model/state';
import { CheckpointCorruptError } from '../../../storage/checkpoints';
import { ExhaustedError } from '../../../tasks/types';
import { ConfigError } from '../../../util/errors';
import { fromError, toFailure } from '../../../workers/compute';

/** An error thrown in a compute process, as the parent worker's activity rethrows it. */
const across = (err: unknown) => toFailure(structuredClone(fromError(err)));

describe('errors across the compute-process boundary', () => {
  it("a user's mistake keeps its class name as the failure type and is not retried", () => {
    const f = across(new ConfigError('rl.lr: expected a positive number'));
    expect(f).toBeInstanceOf(ApplicationFailure);
    expect((f as ApplicationFailure).type).toBe('ConfigError');
    expect(f.message).toBe('rl.lr: expected a positive number');
    expect((f as ApplicationFailure).nonRetryable).toBe(true);
    expect(f.stack).toContain('compute.test.ts'); // the child's stack, not the parent's
    expect((across(new ExhaustedError('countdown: no solvable problem')) as ApplicationFailure).nonRetryable).toBe(true);
    expect((across(z.number().safeParse('x').error) as ApplicationFailure).type).toBe('ZodError');
    expect((across(z.number().safeParse('x').error) as ApplicationFailure).nonRetryable).toBe(true);
  });

  it('stored data that waiting cannot repair and S3 refusing the credentials are not retried (rules/failures.ts)', () => {
    const state = across(new StateError('state: truncated at "weights/wte"')) as ApplicationFailure;
    expect([state.type, state.nonRetryable]).toEqual(['StateError', true]);
    const corrupt = across(new CheckpointCorruptError('c/sft', 'state', 'object is missing')) as ApplicationFailure;
    expect([corrupt.type, corrupt.nonRetryable]).toEqual(['CheckpointCorruptError', true]);
    // The S3 SDK raises its generic exception class with the error code as the name.
    const auth = across(
      new S3ServiceException({ name: 'SignatureDoesNotMatch', $fault: 'client', $metadata: {}, message: 'no' }),
    ) as ApplicationFailure;
    expect([auth.type, auth.nonRetryable]).toEqual(['SignatureDoesNotMatch', true]);
    const slow = across(
      new S3ServiceException({ name: 'SlowDown', $fault: 'server', $metadata: {}, message: 'busy' }),
    ) as ApplicationFailure;
    expect([slow.type, slow.nonRetryable]).toEqual(['S3ServiceException', false]);
  });

  it('any other error keeps its type and stays retryable (a transient fault may pass)', () => {
    const f = across(Object.assign(new Error('connect ECONNREFUSED'), { name: 'Error' })) as ApplicationFailure;
    expect([f.type, f.nonRetryable]).toEqual(['Error', false]);
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
