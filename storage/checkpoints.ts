/**
 * Checkpoints in S3 with a two-phase commit: every object is uploaded and verified (size and
 * sha256), then the manifest is written last with If-None-Match so it is never overwritten. A
 * checkpoint without a manifest is invisible to every reader; `gc` removes what crashed writers left.
 *
 * Layout in the bucket:
 *   manifests/<campaign>/<name>.json          the manifest (id = <campaign>/<name>)
 *   objects/<campaign>/<name>/<obj>.<sha16>   object bodies, content-addressed so that two writers
 *                                             of one id never overwrite each other's bytes
 *   marks/<campaign>/<name>.keep              retention marker
 *   eval-cache/<sha256>/<config hash>.json    evaluation results (age-limited by gc)
 *   teacher-cache/<teacher hash>/<problem id>/<try>.json
 *                                             endpoint teacher answers (a repeated synthesis asks nothing twice)
 */
import { createHash } from 'node:crypto';
import {
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
  type _Object,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { Readable } from 'node:stream';
import { z } from 'zod';
import type { S3Config } from '../config/connection';
import {
  CAMPAIGN_RE,
  CheckpointId,
  CheckpointKind,
  contentIdentity,
  ManifestSchema,
  splitId,
  type Manifest,
  type ObjectEntry,
} from './manifest';
import { makeS3Client } from './s3';

/** Evaluation results cached by (checkpoint content, evaluation config): `eval-cache/<sha256>/<config hash>.json`. */
export const EVAL_CACHE_PREFIX = 'eval-cache';
/** Age limit of an evaluation-cache entry; `gc` removes older ones. */
export const EVAL_CACHE_MAX_AGE_MS = 30 * 24 * 3600_000;
/** Endpoint teacher answers by (teacher config, problem, try): `teacher-cache/<teacher hash>/<problem id>/<try>.json`. */
export const TEACHER_CACHE_PREFIX = 'teacher-cache';
/** Published policy weights, `weights/<sha256>`, and rollout shards, `rollouts/...`: working objects of running steps that `gc` removes once older than its grace period. */
export const WEIGHTS_PREFIX = 'weights';
export const ROLLOUTS_PREFIX = 'rollouts';

export class CheckpointError extends Error {
  override name = 'CheckpointError';
}
/** The same id was committed before with different content. */
export class CheckpointConflictError extends CheckpointError {
  override name = 'CheckpointConflictError';
}
/** An object's bytes do not match its manifest entry; `object` names it. */
export class CheckpointCorruptError extends CheckpointError {
  override name = 'CheckpointCorruptError';
  constructor(
    readonly checkpoint: string,
    readonly object: string,
    detail: string,
  ) {
    super(`checkpoint ${checkpoint}: object "${object}" is corrupt: ${detail}`);
  }
}

export const CommitInput = z.object({
  id: CheckpointId,
  kind: CheckpointKind,
  step: z.number().int().nonnegative().default(0),
  parent: CheckpointId.nullable().default(null),
  configHash: z.string().min(1),
  backend: z.string().min(1),
  meta: z.record(z.string(), z.unknown()).default({}),
});
export type CommitInput = z.input<typeof CommitInput>;

export interface StoreOptions {
  /** Objects larger than this go up as multipart uploads. */
  multipartThresholdBytes?: number;
  partSizeBytes?: number;
  /** Parallel part uploads per object. */
  queueSize?: number;
}

const sha256Hex = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

export class CheckpointStore {
  readonly client: S3Client;
  readonly bucket: string;
  private readonly threshold: number;
  private readonly partSize: number;
  private readonly queueSize: number;

  constructor(cfg: S3Config, opts: StoreOptions = {}, client?: S3Client) {
    this.client = client ?? makeS3Client(cfg);
    this.bucket = cfg.bucket;
    this.partSize = opts.partSizeBytes ?? 16 * 1024 * 1024;
    this.threshold = opts.multipartThresholdBytes ?? this.partSize;
    this.queueSize = opts.queueSize ?? 4;
  }

  close(): void {
    this.client.destroy();
  }

  /** A cache entry (eval-cache, teacher-cache); undefined when absent. */
  async getJson<T>(key: string): Promise<T | undefined> {
    try {
      const r = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      return JSON.parse(await r.Body!.transformToString()) as T;
    } catch (e: any) {
      if (e?.name === 'NoSuchKey' || e?.$metadata?.httpStatusCode === 404) return undefined;
      throw e;
    }
  }

  /** Writes a cache entry once (If-None-Match): an entry is never overwritten; a second writer of the same key is a no-op. */
  putJsonOnce(key: string, value: unknown): Promise<void> {
    return this.putOnce(key, JSON.stringify(value), 'application/json');
  }

  /** Writes an object once (If-None-Match) under a key that its content determines; a second writer is a no-op. */
  async putOnce(key: string, body: Uint8Array | string, contentType = 'application/octet-stream'): Promise<void> {
    try {
      await this.client.send(
        new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body, ContentType: contentType, IfNoneMatch: '*' }),
      );
    } catch (e: any) {
      if (e?.$metadata?.httpStatusCode !== 412) throw e; // written by an identical request already
    }
  }

  /** An object's bytes and their sha256 (hex); undefined when absent. */
  async getObject(key: string): Promise<{ bytes: Buffer; sha256: string } | undefined> {
    try {
      return await this.readObject(key);
    } catch (e: any) {
      if (e?.name === 'NoSuchKey' || e?.$metadata?.httpStatusCode === 404) return undefined;
      throw e;
    }
  }

  /**
   * Commits a checkpoint. Retrying with identical content is a no-op (`created: false`); the
   * same id with different content throws CheckpointConflictError.
   */
  async commit(input: CommitInput, objects: Record<string, Uint8Array>): Promise<{ manifest: Manifest; created: boolean }> {
    const head = CommitInput.parse(input);
    const { campaign, name } = splitId(head.id);
    const entries: ObjectEntry[] = Object.entries(objects).map(([obj, bytes]) => {
      const sha256 = sha256Hex(bytes);
      return { name: obj, key: `objects/${campaign}/${name}/${obj}.${sha256.slice(0, 16)}`, size: bytes.byteLength, sha256 };
    });
    const manifest = ManifestSchema.parse({
      format: 't1.checkpoint/1',
      ...head,
      campaign,
      created: new Date().toISOString(),
      objects: entries,
    });

    const existing = await this.manifest(head.id);
    if (existing) return { manifest: this.sameOrConflict(existing, manifest), created: false };

    await Promise.all(entries.map((e) => this.putVerified(e, objects[e.name])));
    try {
      await this.client.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: manifestKey(head.id),
          Body: JSON.stringify(manifest, null, 2),
          ContentType: 'application/json',
          IfNoneMatch: '*',
        }),
      );
    } catch (e: any) {
      if (e?.$metadata?.httpStatusCode !== 412 && e?.name !== 'PreconditionFailed') throw e;
      // A concurrent writer of the same id won the race.
      const winner = await this.manifest(head.id);
      if (!winner) throw e;
      return { manifest: this.sameOrConflict(winner, manifest), created: false };
    }
    return { manifest, created: true };
  }

  private sameOrConflict(existing: Manifest, wanted: Manifest): Manifest {
    if (contentIdentity(existing) === contentIdentity(wanted)) return existing;
    throw new CheckpointConflictError(
      `checkpoint ${wanted.id} is already committed with different content; committed checkpoints are never overwritten`,
    );
  }

  /** Uploads one object and checks that the server holds exactly its bytes. */
  private async putVerified(e: ObjectEntry, bytes: Uint8Array): Promise<void> {
    const body = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let expected: string;
    if (e.size <= this.threshold) {
      expected = Buffer.from(e.sha256, 'hex').toString('base64');
      // The server recomputes the sha256 and rejects the upload (BadDigest) on mismatch.
      await this.client.send(
        new PutObjectCommand({ Bucket: this.bucket, Key: e.key, Body: body, ChecksumSHA256: expected, ContentLength: e.size }),
      );
    } else {
      await new Upload({
        client: this.client,
        params: { Bucket: this.bucket, Key: e.key, Body: body, ChecksumAlgorithm: 'SHA256' },
        partSize: this.partSize,
        queueSize: this.queueSize,
        leavePartsOnError: false,
      }).done();
      expected = compositeSha256(body, this.partSize);
    }
    const h = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: e.key, ChecksumMode: 'ENABLED' }));
    if (h.ContentLength !== e.size)
      throw new CheckpointCorruptError('(uncommitted)', e.name, `uploaded ${h.ContentLength} bytes, expected ${e.size}`);
    if (h.ChecksumSHA256 === undefined) {
      // A server that keeps no checksums: read the object back and hash it.
      const got = await this.readObject(e.key);
      if (got.sha256 !== e.sha256)
        throw new CheckpointCorruptError('(uncommitted)', e.name, 'read-back sha256 differs from the bytes sent');
    } else if (h.ChecksumSHA256 !== expected) {
      throw new CheckpointCorruptError('(uncommitted)', e.name, 'server checksum differs from the bytes sent');
    }
  }

  /** The manifest of a committed checkpoint, or undefined if there is none. */
  async manifest(id: string): Promise<Manifest | undefined> {
    try {
      const r = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: manifestKey(id) }));
      return ManifestSchema.parse(JSON.parse(await r.Body!.transformToString()));
    } catch (e: any) {
      if (e?.name === 'NoSuchKey' || e?.$metadata?.httpStatusCode === 404) return undefined;
      throw e;
    }
  }

  private async require(id: string): Promise<Manifest> {
    const m = await this.manifest(CheckpointId.parse(id));
    if (!m) throw new CheckpointError(`checkpoint ${id} does not exist (no committed manifest)`);
    return m;
  }

  /** Loads every object, verifying size and sha256; a mismatch names the object. */
  async load(id: string, only?: string[]): Promise<{ manifest: Manifest; objects: Record<string, Buffer> }> {
    const manifest = await this.require(id);
    const wanted = only ? manifest.objects.filter((o) => only.includes(o.name)) : manifest.objects;
    const missing = only?.filter((n) => !manifest.objects.some((o) => o.name === n)) ?? [];
    if (missing.length) throw new CheckpointError(`checkpoint ${id} has no object(s) ${missing.join(', ')}`);
    const loaded = await Promise.all(
      wanted.map(async (o) => {
        let got;
        try {
          got = await this.readObject(o.key, o.size);
        } catch (e: any) {
          if (e?.name === 'NoSuchKey') throw new CheckpointCorruptError(id, o.name, 'object is missing');
          throw e;
        }
        if (got.bytes.byteLength !== o.size)
          throw new CheckpointCorruptError(id, o.name, `size ${got.bytes.byteLength}, manifest says ${o.size}`);
        if (got.sha256 !== o.sha256)
          throw new CheckpointCorruptError(id, o.name, `sha256 ${got.sha256.slice(0, 12)}…, manifest says ${o.sha256.slice(0, 12)}…`);
        return [o.name, got.bytes] as const;
      }),
    );
    return { manifest, objects: Object.fromEntries(loaded) };
  }

  /** Checks every object of a checkpoint without keeping the bytes. */
  async verify(id: string): Promise<{ id: string; ok: boolean; objects: { name: string; ok: boolean; detail?: string }[] }> {
    const m = await this.require(id);
    const objects = await Promise.all(
      m.objects.map(async (o) => {
        try {
          const got = await this.readObject(o.key);
          if (got.bytes.byteLength !== o.size) return { name: o.name, ok: false, detail: `size ${got.bytes.byteLength} != ${o.size}` };
          if (got.sha256 !== o.sha256) return { name: o.name, ok: false, detail: 'sha256 mismatch' };
          return { name: o.name, ok: true };
        } catch (e: any) {
          return { name: o.name, ok: false, detail: e?.name === 'NoSuchKey' ? 'missing' : String(e?.message ?? e) };
        }
      }),
    );
    return { id, ok: objects.every((o) => o.ok), objects };
  }

  /** Streams an object once: hashes while copying into one buffer of the expected size. */
  private async readObject(key: string, expectedSize?: number): Promise<{ bytes: Buffer; sha256: string }> {
    const r = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
    const hash = createHash('sha256');
    const size = expectedSize ?? r.ContentLength ?? 0;
    let out = Buffer.allocUnsafe(size);
    let n = 0;
    for await (const chunk of r.Body as Readable) {
      hash.update(chunk);
      if (n + chunk.length > out.length) out = Buffer.concat([out.subarray(0, n), chunk]);
      else chunk.copy(out, n);
      n += chunk.length;
    }
    return { bytes: out.subarray(0, n), sha256: hash.digest('hex') };
  }

  /** Committed checkpoints, oldest first (by step, then creation time). */
  async list(filter: { campaign?: string; kind?: Manifest['kind'] } = {}): Promise<Manifest[]> {
    const keys = (await this.listKeys(filter.campaign ? `manifests/${filter.campaign}/` : 'manifests/')).filter((o) =>
      o.Key!.endsWith('.json'),
    );
    const all = await mapLimit(keys, 16, async (o) => this.manifest(idFromManifestKey(o.Key!)));
    return all
      .filter((m): m is Manifest => !!m && (!filter.kind || m.kind === filter.kind))
      .sort((a, b) => a.campaign.localeCompare(b.campaign) || a.created.localeCompare(b.created) || a.step - b.step);
  }

  /**
   * Ids of the committed checkpoints whose id starts with `prefix` (`<campaign>/<name prefix>`),
   * in name order: one LIST of manifest keys, no manifest read, however many the campaign holds.
   */
  async ids(prefix: string): Promise<string[]> {
    const { campaign, name } = splitPrefix(prefix);
    const keys = await this.listKeys(`manifests/${campaign}/${name}`);
    return keys
      .map((o) => o.Key!)
      .filter((k) => k.endsWith('.json'))
      .map(idFromManifestKey)
      .sort();
  }

  async latest(campaign: string, kind?: Manifest['kind']): Promise<Manifest | undefined> {
    const ms = await this.list({ campaign, kind });
    return ms[ms.length - 1];
  }

  /** The checkpoint and its ancestors, newest first. */
  async lineage(id: string): Promise<Manifest[]> {
    const out: Manifest[] = [];
    const seen = new Set<string>();
    let cur: string | null = id;
    while (cur && !seen.has(cur)) {
      seen.add(cur);
      const m = await this.manifest(cur);
      if (!m) {
        if (out.length === 0) throw new CheckpointError(`checkpoint ${id} does not exist`);
        break; // an ancestor removed by retention ends the walk
      }
      out.push(m);
      cur = m.parent;
    }
    return out;
  }

  async markKeep(id: string): Promise<void> {
    await this.require(id);
    const { campaign, name } = splitId(id);
    await this.client.send(
      new PutObjectCommand({ Bucket: this.bucket, Key: `marks/${campaign}/${name}.keep`, Body: new Uint8Array(0), ContentLength: 0 }),
    );
  }

  async isKept(id: string): Promise<boolean> {
    const { campaign, name } = splitId(id);
    return (await this.listKeys(`marks/${campaign}/${name}.keep`)).length > 0;
  }

  /**
   * Retention over the checkpoints whose id starts with `prefix` (`<campaign>/` or
   * `<campaign>/<name prefix>`): keeps the last `keepLast` in name order (zero-padded steps make
   * it step order) plus every one marked keep, and deletes the rest. One LIST of ids and one of
   * marks, no manifest reads. Safe to repeat. Returns the deleted ids.
   */
  async retain(opts: { prefix: string; keepLast: number }): Promise<string[]> {
    const ids = await this.ids(opts.prefix);
    const { campaign } = splitPrefix(opts.prefix);
    const marked = new Set(
      (await this.listKeys(`marks/${campaign}/`)).map((o) => `${campaign}/${o.Key!.slice(`marks/${campaign}/`.length, -'.keep'.length)}`),
    );
    const doomed = ids.slice(0, Math.max(0, ids.length - opts.keepLast)).filter((id) => !marked.has(id));
    for (const id of doomed) await this.remove(id);
    return doomed;
  }

  /** Manifest first (the checkpoint disappears at once), then its objects by prefix: a crash in between leaves orphans for gc. */
  private async remove(id: string): Promise<void> {
    const { campaign, name } = splitId(id);
    await this.deleteKeys([manifestKey(id)]);
    await this.deleteKeys((await this.listKeys(`objects/${campaign}/${name}/`)).map((o) => o.Key!));
  }

  /**
   * Removes objects that no manifest references and that are older than `graceMs` (a writer may
   * still be uploading younger ones), published weights and rollout shards older than `graceMs`
   * (left by steps that crashed), and evaluation-cache entries older than `evalCacheMaxAgeMs`
   * (the cache's age limit: a later request for one recomputes it).
   */
  async gc(opts: { graceMs?: number; evalCacheMaxAgeMs?: number } = {}): Promise<{ removed: string[]; bytes: number }> {
    const grace = opts.graceMs ?? 60 * 60_000;
    const maxAge = opts.evalCacheMaxAgeMs ?? EVAL_CACHE_MAX_AGE_MS;
    const referenced = new Set((await this.list()).flatMap((m) => m.objects.map((o) => o.key)));
    const now = Date.now();
    const age = (o: _Object) => now - (o.LastModified?.getTime() ?? now);
    const orphans = (await this.listKeys('objects/')).filter((o) => !referenced.has(o.Key!) && age(o) >= grace);
    const stale = (await this.listKeys(`${EVAL_CACHE_PREFIX}/`)).filter((o) => age(o) >= maxAge);
    const working = [...(await this.listKeys(`${WEIGHTS_PREFIX}/`)), ...(await this.listKeys(`${ROLLOUTS_PREFIX}/`))].filter(
      (o) => age(o) >= grace,
    );
    const removed = [...orphans, ...stale, ...working];
    await this.deleteKeys(removed.map((o) => o.Key!));
    return { removed: removed.map((o) => o.Key!), bytes: removed.reduce((s, o) => s + (o.Size ?? 0), 0) };
  }

  private async listKeys(prefix: string): Promise<_Object[]> {
    const out: _Object[] = [];
    let token: string | undefined;
    do {
      const r = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token }));
      out.push(...(r.Contents ?? []));
      token = r.IsTruncated ? r.NextContinuationToken : undefined;
    } while (token);
    return out;
  }

  async deleteKeys(keys: string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += 1000) {
      const batch = keys.slice(i, i + 1000);
      if (batch.length)
        await this.client.send(
          new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } }),
        );
    }
  }
}

/** `<campaign>/<name prefix>`, the name prefix possibly empty. */
function splitPrefix(prefix: string): { campaign: string; name: string } {
  const [campaign, name = '', ...rest] = prefix.split('/');
  if (rest.length || !CAMPAIGN_RE.test(campaign) || !/^[A-Za-z0-9._-]*$/.test(name))
    throw new CheckpointError(`expected an id prefix <campaign>/<name prefix>, got "${prefix}"`);
  return { campaign, name };
}

function manifestKey(id: string): string {
  const { campaign, name } = splitId(id);
  return `manifests/${campaign}/${name}.json`;
}

function idFromManifestKey(key: string): string {
  return key.slice('manifests/'.length, -'.json'.length);
}

/** S3's multipart SHA256: sha256 over the parts' raw digests, then "-<parts>". */
function compositeSha256(body: Buffer, partSize: number): string {
  const digests: Buffer[] = [];
  for (let i = 0; i < body.length; i += partSize)
    digests.push(
      createHash('sha256')
        .update(body.subarray(i, i + partSize))
        .digest(),
    );
  return `${createHash('sha256').update(Buffer.concat(digests)).digest('base64')}-${digests.length}`;
}

async function mapLimit<T, R>(items: T[], limit: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]);
      }
    }),
  );
  return out;
}
