/**
 * A worker refuses to start, naming the setting, when S3 refuses it: the S3 API's error codes as a
 * server sends them (a loopback stand-in answering every request with one error), and an endpoint
 * where nothing listens. The real server's answer to a wrong secret: tests/integration/preflight.test.ts.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { S3Config } from '../../../config/connection';
import { FAILURES, isRetryable, NON_RETRYABLE } from '../../../rules/failures';
import { ConfigError } from '../../../util/errors';
import { checkS3 } from '../../../workers/preflight';

let server: Server | undefined;
afterEach(() => new Promise<void>((r) => (server ? server.close(() => r()) : r())));

async function s3Answering(status: number, code: string): Promise<S3Config> {
  server = createServer((_req, res) => {
    res.writeHead(status, { 'content-type': 'application/xml' });
    res.end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>refused</Message></Error>`);
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', () => r()));
  return config(`http://127.0.0.1:${(server!.address() as AddressInfo).port}`);
}

function config(endpoint: string): S3Config {
  return { endpoint, bucket: 't1-test', region: 'us-east-1', accessKeyId: 'AKID', secretAccessKey: 'not-this-one', forcePathStyle: true };
}

describe('worker preflight: S3', () => {
  it.each([
    [403, 'SignatureDoesNotMatch', 's3.secretAccessKey [T1_S3_SECRET_ACCESS_KEY]: the S3 server refused the secret key'],
    [403, 'InvalidAccessKeyId', 's3.accessKeyId [T1_S3_ACCESS_KEY_ID]: the S3 server does not know this access key'],
    [404, 'NoSuchBucket', 's3.bucket [T1_S3_BUCKET]: the bucket does not exist'],
  ])('%i %s: refuses with one line naming the setting, never the secret', async (status, code, start) => {
    const s3 = await s3Answering(status, code);
    const err = await checkS3(s3).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    const message = (err as Error).message;
    expect(message.startsWith(start)).toBe(true);
    expect(message).toContain(`bucket "t1-test" at ${s3.endpoint}); this worker will not poll`);
    expect(message).not.toContain('not-this-one');
    expect(message).not.toContain('\n');
  });

  it('an endpoint where nothing listens names s3.endpoint', async () => {
    const err = await checkS3(config('http://127.0.0.1:9')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(/^s3\.endpoint \[T1_S3_ENDPOINT\]: cannot use http:\/\/127\.0\.0\.1:9 \(ECONNREFUSED/);
  });
});

describe('the failure table', () => {
  it('never retries a refusal that no attempt can overcome, and retries faults of the moment', () => {
    for (const t of [
      'ConfigError',
      'CheckpointError',
      'CheckpointCorruptError',
      'StateError',
      'SignatureDoesNotMatch',
      'InvalidAccessKeyId',
      'AccessDenied',
    ])
      expect(NON_RETRYABLE).toContain(t);
    for (const t of ['ComputeProcessExit', 'ComputeProcessHung', 'CheckpointUploadError', 'ModelFetchError'])
      expect(isRetryable(t)).toBe(true);
    expect(isRetryable('SomethingNew')).toBe(true);
    expect(NON_RETRYABLE).toHaveLength(Object.values(FAILURES).filter((c) => !c.retryable).length);
  });
});
