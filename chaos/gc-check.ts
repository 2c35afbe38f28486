/**
 * After the chaos: `t1 checkpoints gc` (the store's gc) with a grace period of 0, then the same gc
 * again on a store whose S3 client does not send deletions, aborts or writes (a dry run): what it
 * would still remove is what the first pass left behind. Then every committed checkpoint is
 * verified (size and sha256 of each object), so gc took nothing a manifest references.
 */
import {
  AbortMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import type { S3Config } from '../config/connection';
import { CheckpointStore, type GcOptions } from '../storage/checkpoints';
import { makeS3Client } from '../storage/s3';

export interface GcCheck {
  /** Keys the gc removed (objects no manifest references, unheld weights, rollout shards). */
  removed: number;
  aborted: number;
  expired: number;
  /** What a second gc would still remove, abort or expire (should be nothing). */
  orphansLeft: number;
  leftKeys: string[];
  /** Committed checkpoints of the given campaigns verified after gc, and those that did not verify. */
  verified: number;
  bad: string[];
}

/** Nothing is running by now: no commit is in flight and no run holds weights, so nothing deserves a grace period. */
const NOW: GcOptions = { graceMs: 0, holdExpiryMs: 0 };

/** A client that lists and reads, and answers every write with success without sending it. */
function dryRunClient(cfg: S3Config): S3Client {
  const client = makeS3Client(cfg);
  const send = client.send.bind(client) as (cmd: unknown, ...rest: unknown[]) => Promise<unknown>;
  const writes = [DeleteObjectsCommand, DeleteObjectCommand, AbortMultipartUploadCommand, PutObjectCommand];
  client.send = ((cmd: unknown, ...rest: unknown[]) =>
    writes.some((w) => cmd instanceof w) ? Promise.resolve({}) : send(cmd, ...rest)) as S3Client['send'];
  return client;
}

export async function gcCheck(cfg: S3Config, store: CheckpointStore, campaigns: string[]): Promise<GcCheck> {
  const first = await store.gc(NOW);
  const probe = new CheckpointStore(cfg, {}, dryRunClient(cfg));
  let left;
  try {
    left = await probe.gc(NOW);
  } finally {
    probe.close();
  }
  const leftKeys = [...left.removed, ...left.aborted, ...left.expired];
  const bad: string[] = [];
  let verified = 0;
  for (const campaign of campaigns) {
    for (const m of await store.list({ campaign })) {
      const v = await store.verify(m.id);
      verified++;
      if (!v.ok) bad.push(`${m.id}: ${v.objects.filter((o) => !o.ok).map((o) => `${o.name} ${o.detail}`)}`);
    }
  }
  return {
    removed: first.removed.length,
    aborted: first.aborted.length,
    expired: first.expired.length,
    orphansLeft: leftKeys.length,
    leftKeys,
    verified,
    bad,
  };
}
