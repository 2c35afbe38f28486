/**
 * Checkpoint commit/load throughput against a raw PutObject/GetObject of the same bytes, in the
 * same run, on the local stack. Ratios: ours over raw (targets: commit >= 0.5, load >= 0.7).
 */
import { randomBytes } from 'node:crypto';
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { loadConnection, loadStack } from '../config/connection';
import { stackUp } from '../infra/stack';
import { CheckpointStore } from '../storage/checkpoints';
import type { Bench } from './metric';

const SIZES_MB = [64, 512];
const seconds = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e9;

export const checkpointBench: Bench = {
  metrics: [
    'checkpoint_commit_vs_raw',
    'checkpoint_load_vs_raw',
    'checkpoint_commit_mb_s',
    'checkpoint_load_mb_s',
    'raw_put_mb_s',
    'raw_get_mb_s',
  ],
  async run(emit) {
    await stackUp(loadStack(), (l) => console.error(`[stack] ${l}`));
    const { s3 } = loadConnection();
    const store = new CheckpointStore(s3);
    const campaign = `bench-${Date.now().toString(36)}`;
    try {
      for (const mb of SIZES_MB) {
        const bytes = randomBytes(mb * 1024 * 1024);
        const rawKey = `bench/${campaign}/raw-${mb}`;
        // Warm the connection pool and the server's volumes.
        await store.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: `${rawKey}-warm`, Body: bytes.subarray(0, 1 << 20) }));

        let t0 = process.hrtime.bigint();
        await store.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: rawKey, Body: bytes, ContentLength: bytes.length }));
        const rawPut = seconds(t0);

        t0 = process.hrtime.bigint();
        const r = await store.client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: rawKey }));
        const got = await r.Body!.transformToByteArray();
        const rawGet = seconds(t0);
        if (got.byteLength !== bytes.length) throw new Error('raw get returned a different size');

        const id = `${campaign}/ck-${mb}`;
        t0 = process.hrtime.bigint();
        await store.commit({ id, kind: 'sft', configHash: 'bench', backend: 'none' }, { weights: bytes });
        const commit = seconds(t0);

        t0 = process.hrtime.bigint();
        await store.load(id);
        const load = seconds(t0);

        const ctx = { size_mb: mb, part_mb: 16, server: 'seaweedfs', host_cores: (await import('node:os')).cpus().length };
        emit({ metric: 'checkpoint_commit_vs_raw', value: round(rawPut / commit), unit: 'ratio', target: 0.5, ...ctx });
        emit({ metric: 'checkpoint_load_vs_raw', value: round(rawGet / load), unit: 'ratio', target: 0.7, ...ctx });
        emit({ metric: 'checkpoint_commit_mb_s', value: round(mb / commit), unit: 'MB/s', ...ctx });
        emit({ metric: 'checkpoint_load_mb_s', value: round(mb / load), unit: 'MB/s', ...ctx });
        emit({ metric: 'raw_put_mb_s', value: round(mb / rawPut), unit: 'MB/s', ...ctx });
        emit({ metric: 'raw_get_mb_s', value: round(mb / rawGet), unit: 'MB/s', ...ctx });

        for (const k of [rawKey, `${rawKey}-warm`]) await store.client.send(new DeleteObjectCommand({ Bucket: s3.bucket, Key: k }));
      }
      await store.retain({ prefix: `${campaign}/`, keepLast: 0 });
    } finally {
      store.close();
    }
  },
};

const round = (x: number) => Math.round(x * 1000) / 1000;
