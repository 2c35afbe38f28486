/**
 * What a worker checks before it polls: that its S3 credentials are accepted and its bucket
 * exists. A worker that cannot store checkpoints would take tasks and fail every one, burning the
 * attempts of campaigns other workers could serve; it refuses to start instead, with one line
 * naming the setting to fix (never its value).
 */
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { settingName, type S3Config } from '../config/connection';
import { makeS3Client } from '../storage/s3';
import { ConfigError } from '../util/errors';

/** The setting at fault for each refusal the S3 API names by code. */
const FAULTS: Record<string, [field: Parameters<typeof settingName>[0], what: string]> = {
  InvalidAccessKeyId: ['s3.accessKeyId', 'the S3 server does not know this access key'],
  SignatureDoesNotMatch: ['s3.secretAccessKey', 'the S3 server refused the secret key (signature does not match)'],
  AccessDenied: ['s3.accessKeyId', 'these credentials may not list the bucket'],
  NoSuchBucket: ['s3.bucket', 'the bucket does not exist'],
};

export async function checkS3(s3: S3Config): Promise<void> {
  const client = makeS3Client(s3, { timeoutMs: 10_000 });
  try {
    await client.send(new ListObjectsV2Command({ Bucket: s3.bucket, MaxKeys: 1 }));
  } catch (e) {
    const err = e as Error & { code?: string };
    const fault = FAULTS[err.name];
    if (fault)
      throw new ConfigError(`${settingName(fault[0])}: ${fault[1]} (bucket "${s3.bucket}" at ${s3.endpoint}); this worker will not poll`);
    throw new ConfigError(
      `${settingName('s3.endpoint')}: cannot use ${s3.endpoint} (${err.code ?? err.name}: ${err.message.split('\n')[0]}); this worker will not poll`,
    );
  } finally {
    client.destroy();
  }
}
