/** s3:// model URIs against the real S3 server of the test stack: a prefix holding a HF directory, and a single GGUF object. */
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportGguf } from '../../formats/export';
import { loadPretrained, openPretrained } from '../../formats/pretrained';
import { contentHash, ModelSourceError, resolveModel } from '../../formats/source';
import { makeS3Client } from '../../storage/s3';
import { testConnection, uniqueCampaign } from './helpers';

const FIXTURE = join(import.meta.dirname, '../fixtures/pretrained/llama-tied');
const conn = testConnection();
const s3 = makeS3Client(conn.s3);
const bucket = conn.s3.bucket;
const prefix = `model-source/${uniqueCampaign('tiny')}`;
let tmp: string;
let gguf: Buffer;
/** Every command the client sends, so a cached resolve can be shown to send none. */
let sent = 0;
s3.middlewareStack.add(
  (next) => (args) => {
    sent++;
    return next(args);
  },
  { step: 'initialize', name: 'countModelSourceRequests' },
);

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 't1-model-source-'));
  const m = loadPretrained(FIXTURE);
  exportGguf({ config: m.config, weights: m.weights, tokenizer: m.tokenizer, name: 'tiny' }, join(tmp, 'tiny-f16.gguf'), 'f16');
  gguf = readFileSync(join(tmp, 'tiny-f16.gguf'));
  for (const name of readdirSync(FIXTURE))
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: `${prefix}/hf/${name}`, Body: readFileSync(join(FIXTURE, name)) }));
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: `${prefix}/tiny-f16.gguf`, Body: gguf }));
});
afterAll(() => {
  s3.destroy();
  rmSync(tmp, { recursive: true, force: true });
});

describe('s3:// model sources (real S3 server)', () => {
  it('fetches a prefix holding a HF directory and a single GGUF object; later calls are served from the cache', async () => {
    const cacheDir = join(tmp, 'cache');
    const log: string[] = [];
    const dir = await resolveModel(`s3://${bucket}/${prefix}/hf`, { cacheDir, s3, log: (l) => log.push(l) });
    expect(dir.sha256).toBe(await contentHash(FIXTURE));
    expect(readdirSync(dir.path)).not.toContain('reference.json');
    expect(openPretrained(dir.path).config).toEqual(openPretrained(FIXTURE).config);
    expect(log.at(-1)).toBe(`s3://${bucket}/${prefix}/hf: fetched, sha256 ${dir.sha256}`);

    const file = await resolveModel(`s3://${bucket}/${prefix}/tiny-f16.gguf`, { cacheDir, s3 });
    expect(file.sha256).toBe(createHash('sha256').update(gguf).digest('hex'));
    expect(openPretrained(file.path).format).toBe('gguf');

    sent = 0;
    expect(await resolveModel(`s3://${bucket}/${prefix}/hf`, { cacheDir, s3, expectSha256: dir.sha256 })).toEqual(dir);
    expect(await resolveModel(`s3://${bucket}/${prefix}/tiny-f16.gguf`, { cacheDir, s3 })).toEqual(file);
    expect(sent).toBe(0);
  });

  it('a missing key is a one-line ModelSourceError naming the URI', async () => {
    const uri = `s3://${bucket}/${prefix}/missing.gguf`;
    const e = await resolveModel(uri, { cacheDir: join(tmp, 'cache-missing'), s3 }).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(ModelSourceError);
    expect((e as Error).message).toBe(`${uri}: no such object, and no objects under ${prefix}/missing.gguf/`);
  });
});
