/** S3 client for any S3-compatible server; settings measured against local servers (NOTES.md). */
import { S3Client } from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { S3Config } from '../config/connection';

// Node 20 is a fixed choice of this project; the SDK's notice about Node 22 is noise in every log.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

export function makeS3Client(cfg: S3Config, opts: { timeoutMs?: number } = {}): S3Client {
  return new S3Client({
    endpoint: cfg.endpoint,
    region: cfg.region,
    forcePathStyle: cfg.forcePathStyle,
    credentials: { accessKeyId: cfg.accessKeyId, secretAccessKey: cfg.secretAccessKey },
    // Streamed bodies with aws-chunked trailers are stored verbatim by some local servers:
    // we send explicit checksums ourselves and verify sha256 after upload.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 3,
    requestHandler: new NodeHttpHandler({ connectionTimeout: opts.timeoutMs ?? 5000, requestTimeout: opts.timeoutMs ?? 120_000 }),
  });
}
