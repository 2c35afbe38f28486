/**
 * Checkpoints in S3 with a two-phase commit: every object is uploaded and verified (size and
 * sha256), then the manifest is written last with If-None-Match so it is never overwritten. A
 * checkpoint without a manifest is invisible to every reader; `gc` removes what crashed writers left.
 * A commit holds a lease while it uploads, which gc honours, and checks that every object is still
 * there right before it writes the manifest.
 *
 * Layout in the bucket:
 *   manifests/<campaign>/<name>.json          the manifest (id = <campaign>/<name>)
 *   objects/<campaign>/<name>/<obj>.<sha16>   object bodies, content-addressed so that two writers
 *                                             of one id never overwrite each other's bytes
 *   leases/<campaign>/<name>.json             a commit in progress (written before its first object,
 *                                             refreshed while it uploads, deleted after its manifest)
 *   marks/<campaign>/<name>.keep              retention marker
 *   weights/<sha256>                          published policy weights (storage/weights), shared by
 *   weights/<sha256>.refs/<holder>            content; each run holds them by a reference marker and
 *   weights/<sha256>.deleting                 the last one out deletes them (under this marker)
 *   eval-cache/<sha256>/<config hash>.json    evaluation results (age-limited by gc)
 *   teacher-cache/<teacher hash>/<problem id>/<try>.json
 *                                             endpoint teacher answers (a repeated synthesis asks nothing twice)
 *   tb/<campaign>/<run>/events.out.tfevents.*  TensorBoard logs of the training curves, in write-once parts
 *                                             (storage/tensorboard.ts)
 */
import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import {
  AbortMultipartUploadCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type MultipartUpload,
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
/**
 * Published policy weights, `weights/<sha256>`, held by reference markers (`holdShared`), and rollout
 * shards, `rollouts/...`: working objects of running steps. `gc` removes unheld weights and shards
 * once older than its grace period.
 */
export const WEIGHTS_PREFIX = 'weights';
export const ROLLOUTS_PREFIX = 'rollouts';
/** Commits in progress: `leases/<campaign>/<name>.json`. */
export const LEASES_PREFIX = 'leases';
/**
 * How often a commit in progress refreshes its lease. gc takes a lease not refreshed within its
 * grace period (default 1 h: sixty refreshes missed) as left by a writer that is gone.
 */
export const LEASE_REFRESH_MS = 60_000;
/**
 * Age at which gc takes a reference marker on published weights as left by a run that is gone
 * (generous: markers are not refreshed, and a run holds its weights for a step or an evaluation sweep).
 */
export const HOLD_EXPIRY_MS = 24 * 3600_000;
/** A deletion marker (`<key>.deleting`) older than this was left by a collector that died; it is ignored. */
export const COLLECTOR_STALE_MS = 60_000;

export class CheckpointError extends Error {
  override name = 'CheckpointError';
}
/** The same id was committed before with different content. */
export class CheckpointConflictError extends CheckpointError {
  override name = 'CheckpointConflictError';
}
/**
 * A commit that could not complete but that a retry can (rules/failures: retryable): an object that
 * did not verify after its upload, or that vanished before the manifest was written (gc took it
 * while the commit's lease was lost).
 */
export class CheckpointUploadError extends CheckpointError {
  override name = 'CheckpointUploadError';
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
  /** How often a commit in progress refreshes its lease (default LEASE_REFRESH_MS). */
  leaseRefreshMs?: number;
}

export interface GcOptions {
  /** Unreferenced objects, incomplete multipart uploads, unheld weights and rollout shards younger than this are kept (default 1 h). */
  graceMs?: number;
  /** Evaluation-cache entries older than this are removed (default EVAL_CACHE_MAX_AGE_MS). */
  evalCacheMaxAgeMs?: number;
  /** A commit's lease not refreshed for this long is stale: its writer is gone (default `graceMs`). */
  leaseExpiryMs?: number;
  /** Reference markers on published weights older than this are stale (default HOLD_EXPIRY_MS). */
  holdExpiryMs?: number;
}

export interface GcResult {
  /** Keys of the objects deleted (checkpoint objects, cache entries, rollout shards, published weights). */
  removed: string[];
  /** Their bytes. */
  bytes: number;
  /** Keys of the incomplete multipart uploads aborted. */
  aborted: string[];
  /** Stale leases and reference markers deleted. */
  expired: string[];
}

const sha256Hex = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

export class CheckpointStore {
  readonly client: S3Client;
  readonly bucket: string;
  private readonly threshold: number;
  private readonly partSize: number;
  private readonly queueSize: number;
  private readonly leaseRefreshMs: number;

  constructor(cfg: S3Config, opts: StoreOptions = {}, client?: S3Client) {
    this.client = client ?? makeS3Client(cfg);
    this.bucket = cfg.bucket;
    this.partSize = opts.partSizeBytes ?? 16 * 1024 * 1024;
    this.threshold = opts.multipartThresholdBytes ?? this.partSize;
    this.queueSize = opts.queueSize ?? 4;
    this.leaseRefreshMs = opts.leaseRefreshMs ?? LEASE_REFRESH_MS;
  }

  close(): void {
    this.client.destroy();
  }

  /** A cache entry (eval-cache, teacher-cache); undefined when absent. */
  async getJson<T>(key: string): Promise<T | undefined> {
    return (await this.getJsonTagged<T>(key))?.value;
  }

  /** A JSON object and its ETag (for a conditional write that replaces it: If-Match); undefined when absent. */
  async getJsonTagged<T>(key: string): Promise<{ value: T; etag: string } | undefined> {
    try {
      const r = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      return { value: JSON.parse(await r.Body!.transformToString()) as T, etag: r.ETag! };
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

    // The lease tells gc that these objects, unreferenced until the manifest exists, are being written.
    const lease = await this.takeLease(head.id);
    try {
      await Promise.all(entries.map((e) => this.putVerified(e, objects[e.name])));
      // gc honours the lease, but a lease can be lost (a writer paused past gc's grace period): never write
      // a manifest over an object that is not there.
      await this.requirePresent(head.id, entries);
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
        if (!isPreconditionFailed(e)) throw e;
        // A concurrent writer of the same id won the race.
        const winner = await this.manifest(head.id);
        if (!winner) throw e;
        return { manifest: this.sameOrConflict(winner, manifest), created: false };
      }
    } finally {
      await lease.release();
    }
    return { manifest, created: true };
  }

  /**
   * Writes the commit's lease (before its first object) and refreshes it every leaseRefreshMs until
   * released (after its manifest, or on failure, when gc may take the objects after its grace period).
   */
  private async takeLease(id: string): Promise<{ release: () => Promise<void> }> {
    const key = leaseKey(id);
    const started = new Date().toISOString();
    const write = () =>
      this.client.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: key,
          Body: JSON.stringify({ id, writer: `${hostname()}:${process.pid}`, started, refreshed: new Date().toISOString() }),
          ContentType: 'application/json',
        }),
      );
    await write();
    let pending: Promise<unknown> = Promise.resolve();
    // A failed refresh is not fatal: the next one may succeed, and the commit checks its objects before the manifest.
    const timer = setInterval(() => (pending = pending.then(write).catch(() => undefined)), this.leaseRefreshMs);
    timer.unref();
    return {
      release: async () => {
        clearInterval(timer);
        await pending;
        await this.deleteKeys([key]).catch(() => undefined); // a lease left behind goes stale
      },
    };
  }

  /** Every object of a commit is still in the bucket (HEAD each), or CheckpointUploadError naming the first missing one. */
  private async requirePresent(id: string, entries: ObjectEntry[]): Promise<void> {
    await mapLimit(entries, 16, async (e) => {
      try {
        await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: e.key }));
      } catch (err: any) {
        if (!isNotFound(err)) throw err;
        throw new CheckpointUploadError(
          `checkpoint ${id}: object "${e.name}" disappeared before the manifest was written (removed by gc?); nothing was committed, a retry uploads it again`,
        );
      }
    });
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
      const upload = new Upload({
        client: this.client,
        params: { Bucket: this.bucket, Key: e.key, Body: body, ChecksumAlgorithm: 'SHA256' },
        partSize: this.partSize,
        queueSize: this.queueSize,
        leavePartsOnError: false,
      });
      try {
        await upload.done();
      } catch (err) {
        // lib-storage aborts a failed upload itself, unless that abort fails too: abort it again, so
        // no incomplete upload (invisible to LIST, billed by S3) is left behind; gc aborts what a crash leaves.
        if (upload.uploadId)
          await this.client
            .send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: e.key, UploadId: upload.uploadId }))
            .catch(() => undefined);
        throw err;
      }
      expected = compositeSha256(body, this.partSize);
    }
    const h = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: e.key, ChecksumMode: 'ENABLED' }));
    if (h.ContentLength !== e.size)
      throw new CheckpointUploadError(`object "${e.name}" did not verify after upload: ${h.ContentLength} bytes, expected ${e.size}`);
    if (h.ChecksumSHA256 === undefined) {
      // A server that keeps no checksums: read the object back and hash it.
      const got = await this.readObject(e.key);
      if (got.sha256 !== e.sha256)
        throw new CheckpointUploadError(`object "${e.name}" did not verify after upload: read-back sha256 differs from the bytes sent`);
    } else if (h.ChecksumSHA256 !== expected) {
      throw new CheckpointUploadError(`object "${e.name}" did not verify after upload: server checksum differs from the bytes sent`);
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

  /** Removes a keep mark (a promotion that lost to a better one takes back the mark it set). */
  async unmarkKeep(id: string): Promise<void> {
    const { campaign, name } = splitId(id);
    await this.deleteKeys([`marks/${campaign}/${name}.keep`]);
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
   * Removes what crashed writers left, never what a running writer still needs:
   * - objects that no manifest references, older than `graceMs`, unless their commit holds a live
   *   lease (a commit slower than the grace period keeps its objects);
   * - incomplete multipart uploads of objects started more than `graceMs` ago, under the same lease rule;
   * - published weights that no live reference marker holds, older than `graceMs`, and rollout
   *   shards older than `graceMs` (left by steps that crashed);
   * - leases not refreshed for `leaseExpiryMs` (default: the grace period) and reference markers
   *   older than `holdExpiryMs` (their writers are gone);
   * - evaluation-cache entries older than `evalCacheMaxAgeMs` (a later request recomputes one).
   *
   * Objects, then uploads, then leases, then manifests are listed, in that order: a commit writes its
   * lease before its first object and deletes it after its manifest, so an object listed here either
   * has its lease in the later listing or its manifest in the one after.
   */
  async gc(opts: GcOptions = {}): Promise<GcResult> {
    const grace = opts.graceMs ?? 60 * 60_000;
    const maxAge = opts.evalCacheMaxAgeMs ?? EVAL_CACHE_MAX_AGE_MS;
    const expiry = opts.leaseExpiryMs ?? grace;
    const holdExpiry = opts.holdExpiryMs ?? HOLD_EXPIRY_MS;
    const now = Date.now();
    const age = (o: _Object) => now - (o.LastModified?.getTime() ?? now);

    const objects = await this.listKeys('objects/');
    // Only commits upload in parts (under objects/); other uploads to the bucket (task files) are not ours to abort.
    const uploads = await this.listUploads('objects/');
    const leases = await this.listKeys(`${LEASES_PREFIX}/`);
    const referenced = new Set((await this.list()).flatMap((m) => m.objects.map((o) => o.key)));
    const staleLeases = leases.filter((o) => age(o) >= expiry);
    const leased = new Set(leases.filter((o) => age(o) < expiry).map((o) => o.Key!.slice(`${LEASES_PREFIX}/`.length, -'.json'.length)));
    const unleased = (key: string) => !leased.has(checkpointOfObjectKey(key));

    const orphans = objects.filter((o) => !referenced.has(o.Key!) && age(o) >= grace && unleased(o.Key!));
    const abandoned = uploads.filter((u) => now - (u.Initiated?.getTime() ?? now) >= grace && unleased(u.Key!));
    const aborted: string[] = [];
    for (const u of abandoned) {
      try {
        await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: u.Key!, UploadId: u.UploadId! }));
        aborted.push(u.Key!);
      } catch (e: any) {
        if (e?.name !== 'NoSuchUpload' && !isNotFound(e)) throw e; // completed or aborted meanwhile
      }
    }

    const stale = (await this.listKeys(`${EVAL_CACHE_PREFIX}/`)).filter((o) => age(o) >= maxAge);
    const shards = (await this.listKeys(`${ROLLOUTS_PREFIX}/`)).filter((o) => age(o) >= grace);
    const removed = [...orphans, ...stale, ...shards];
    await this.deleteKeys([...staleLeases, ...removed].map((o) => o.Key!));

    // Published weights: stale markers first, then every object no marker holds (under the collector's protocol).
    const weights = await this.listKeys(`${WEIGHTS_PREFIX}/`);
    const markers = weights.filter((o) => /\.refs\/[^/]+$/.test(o.Key!));
    const staleMarkers = [
      ...markers.filter((o) => age(o) >= holdExpiry),
      ...weights.filter((o) => o.Key!.endsWith('.deleting') && age(o) >= COLLECTOR_STALE_MS),
    ];
    await this.deleteKeys(staleMarkers.map((o) => o.Key!));
    const held = new Set(markers.filter((o) => age(o) < holdExpiry).map((o) => o.Key!.slice(0, o.Key!.lastIndexOf('.refs/'))));
    for (const o of weights.filter((w) => /^[^/]+\/[0-9a-f]{64}$/.test(w.Key!) && !held.has(w.Key!) && age(w) >= grace))
      if ((await this.collectShared(o.Key!)) === true) removed.push(o);

    return {
      removed: removed.map((o) => o.Key!),
      bytes: removed.reduce((s, o) => s + (o.Size ?? 0), 0),
      aborted,
      expired: [...staleLeases, ...staleMarkers].map((o) => o.Key!),
    };
  }

  /**
   * Holds a shared object (published weights, `key` named by its content) for `holder`: writes the
   * marker `<key>.refs/<holder>`, waits out a collector deleting the object at this moment, then
   * calls `write` (an If-None-Match write: a no-op when the object is there). The object stays until
   * its last holder releases it (or gc finds every marker stale).
   */
  async holdShared(key: string, holder: string, write: () => Promise<void>): Promise<void> {
    await this.putMarker(refKey(key, holder));
    // A collector that listed no marker before ours may be deleting the object: it deletes it before
    // its own marker, so once that marker is gone our write lands after the deletion.
    for (;;) {
      const collector = await this.head(`${key}.deleting`);
      if (!collector || Date.now() - (collector.LastModified?.getTime() ?? 0) >= COLLECTOR_STALE_MS) break;
      await sleep(100);
    }
    await write();
  }

  /** Drops `holder`'s marker; the last holder out deletes the object. Returns whether it was deleted. */
  async releaseShared(key: string, holder: string): Promise<boolean> {
    await this.deleteKeys([refKey(key, holder)]);
    // A collector already at work may have listed our marker before we dropped it: once it is done, look again.
    for (let tries = 0; ; tries++) {
      const r = await this.collectShared(key);
      if (r !== 'busy') return r;
      if (tries >= 50) return false; // left for gc
      await sleep(100);
    }
  }

  /**
   * Deletes a shared object that no marker holds. Under `<key>.deleting` (If-None-Match: one
   * collector at a time) the markers are listed again, so a holder that arrived after the first
   * look either is seen (nothing is deleted) or finds the collector's marker and writes the object
   * again once the deletion is done.
   */
  private async collectShared(key: string): Promise<boolean | 'busy'> {
    if (await this.isHeld(key)) return false;
    const mark = `${key}.deleting`;
    try {
      await this.client.send(
        new PutObjectCommand({ Bucket: this.bucket, Key: mark, Body: new Uint8Array(0), ContentLength: 0, IfNoneMatch: '*' }),
      );
    } catch (e: any) {
      if (isPreconditionFailed(e)) return 'busy'; // another collector is at it
      throw e;
    }
    try {
      if (await this.isHeld(key)) return false;
      await this.deleteKeys([key]);
      return true;
    } finally {
      await this.deleteKeys([mark]);
    }
  }

  private async isHeld(key: string): Promise<boolean> {
    const r = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: `${key}.refs/`, MaxKeys: 1 }));
    return (r.KeyCount ?? r.Contents?.length ?? 0) > 0;
  }

  private async putMarker(key: string): Promise<void> {
    await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: new Uint8Array(0), ContentLength: 0 }));
  }

  private async head(key: string): Promise<{ LastModified?: Date } | undefined> {
    try {
      return await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
    } catch (e: any) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  /** Incomplete multipart uploads under `prefix`. */
  private async listUploads(prefix: string): Promise<MultipartUpload[]> {
    const out: MultipartUpload[] = [];
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    for (;;) {
      const r = await this.client.send(
        new ListMultipartUploadsCommand({ Bucket: this.bucket, Prefix: prefix, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker }),
      );
      out.push(...(r.Uploads ?? []));
      if (!r.IsTruncated || (r.NextKeyMarker === keyMarker && r.NextUploadIdMarker === uploadIdMarker)) return out;
      keyMarker = r.NextKeyMarker;
      uploadIdMarker = r.NextUploadIdMarker;
    }
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

function leaseKey(id: string): string {
  const { campaign, name } = splitId(id);
  return `${LEASES_PREFIX}/${campaign}/${name}.json`;
}

/** `objects/<campaign>/<name>/<obj>` -> `<campaign>/<name>`. */
function checkpointOfObjectKey(key: string): string {
  return key.split('/').slice(1, 3).join('/');
}

function refKey(key: string, holder: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(holder))
    throw new CheckpointError(`expected a holder name of letters, digits, ".", "_", "-", got "${holder}"`);
  return `${key}.refs/${holder}`;
}

const isNotFound = (e: any) => e?.name === 'NoSuchKey' || e?.name === 'NotFound' || e?.$metadata?.httpStatusCode === 404;
const isPreconditionFailed = (e: any) => e?.$metadata?.httpStatusCode === 412 || e?.name === 'PreconditionFailed';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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
