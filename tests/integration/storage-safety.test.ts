/**
 * Storage safety against the real S3 server: gc never takes what a running writer needs (a slow
 * commit's objects and multipart uploads, weights another run holds), failed multipart uploads
 * leave nothing behind, and racing promotions leave the better model promoted.
 */
import { randomBytes } from 'node:crypto';
import {
  CreateMultipartUploadCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { promotionActivities } from '../../activities/promotion';
import { initBackend } from '../../model/backend';
import { modelConfig } from '../../model/config';
import { Transformer } from '../../model/transformer';
import { failureType, isRetryable } from '../../rules/failures';
import { CheckpointStore, CheckpointUploadError, type StoreOptions } from '../../storage/checkpoints';
import { ModelCache } from '../../model/cache';
import { publishWeights, readWeights, releaseWeights, weightsKey } from '../../storage/weights';
import { Prng } from '../../util/prng';
import { t1, testConnection, uniqueCampaign, waitFor } from './helpers';

const conn = testConnection();
const store = new CheckpointStore(conn.s3);
const opened: CheckpointStore[] = [store];
afterAll(() => opened.forEach((s) => s.close()));

const base = { kind: 'sft' as const, configHash: 'cfg-1', backend: 'test' };
const MiB = 1024 * 1024;

interface Hooks {
  /** Runs before a command is sent (may wait, or throw to fail it). */
  before?: (cmd: any) => unknown;
  /** Runs after a command completed, succeeded or failed. */
  after?: (cmd: any) => unknown;
}

/** A store whose S3 client lets the test hold, fail or observe single commands. */
function storeWith(hooks: Hooks, opts: StoreOptions = {}): CheckpointStore {
  const s = new CheckpointStore(conn.s3, opts);
  opened.push(s);
  const send = s.client.send.bind(s.client) as (cmd: any, ...rest: any[]) => Promise<any>;
  (s.client as any).send = async (cmd: any, ...rest: any[]) => {
    await hooks.before?.(cmd);
    try {
      return await send(cmd, ...rest);
    } finally {
      await hooks.after?.(cmd);
    }
  };
  return s;
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

const is = (cmd: any, name: string) => cmd.constructor.name === name;
const keyOf = (cmd: any): string => cmd.input?.Key ?? '';

async function exists(key: string): Promise<boolean> {
  try {
    await store.client.send(new HeadObjectCommand({ Bucket: store.bucket, Key: key }));
    return true;
  } catch (e: any) {
    if (e?.$metadata?.httpStatusCode === 404) return false;
    throw e;
  }
}

const listed = async (prefix: string) =>
  ((await store.client.send(new ListObjectsV2Command({ Bucket: store.bucket, Prefix: prefix }))).Contents ?? []).map((o) => o.Key!);

const uploads = async (prefix: string) =>
  (await store.client.send(new ListMultipartUploadsCommand({ Bucket: store.bucket, Prefix: prefix }))).Uploads ?? [];

describe('a commit slower than the gc grace period', () => {
  it('keeps its objects and its multipart upload under its lease; the commit lands and loads', async () => {
    const c = uniqueCampaign('slow');
    const gate = deferred();
    let leaseWrites = 0;
    // Object "b" and the second part of "big" wait for the gate: the commit outlasts a gc of grace 0.
    const slow = storeWith(
      {
        before: async (cmd) => {
          if (!keyOf(cmd).startsWith(`objects/${c}/`)) return;
          if (is(cmd, 'PutObjectCommand') && keyOf(cmd).includes('/b.')) await gate.promise;
          if (is(cmd, 'UploadPartCommand') && cmd.input.PartNumber === 2) await gate.promise;
        },
        after: (cmd) => {
          if (is(cmd, 'PutObjectCommand') && keyOf(cmd) === `leases/${c}/ck.json`) leaseWrites++;
        },
      },
      { multipartThresholdBytes: 5 * MiB, partSizeBytes: 5 * MiB, queueSize: 1, leaseRefreshMs: 200 },
    );
    const objects = { a: randomBytes(1000), b: randomBytes(2000), big: randomBytes(11 * MiB + 17) };
    const commit = slow.commit({ ...base, id: `${c}/ck` }, objects);
    await waitFor(
      'object a and a started multipart upload',
      async () => (await listed(`objects/${c}/ck/a.`)).length === 1 && (await uploads(`objects/${c}/`)).length === 1,
    );
    expect(await listed(`leases/${c}/`)).toEqual([`leases/${c}/ck.json`]);
    await new Promise((r) => setTimeout(r, 2100)); // a and the upload are older than a grace of 2 s
    expect(leaseWrites).toBeGreaterThanOrEqual(5); // written, then refreshed while the uploads wait

    // The lease was refreshed within the grace period (it is also gc's lease expiry): the writer is alive.
    const r = await store.gc({ graceMs: 2000 });
    expect(r.removed.filter((k) => k.includes(c))).toEqual([]);
    expect(r.aborted.filter((k) => k.includes(c))).toEqual([]);
    expect(await listed(`objects/${c}/ck/a.`)).toHaveLength(1);
    expect(await uploads(`objects/${c}/`)).toHaveLength(1);

    gate.resolve();
    const { created } = await commit;
    expect(created).toBe(true);
    const loaded = await store.load(`${c}/ck`);
    for (const [name, bytes] of Object.entries(objects)) expect(Buffer.compare(loaded.objects[name], bytes)).toBe(0);
    expect((await store.verify(`${c}/ck`)).ok).toBe(true);
    expect(await listed(`leases/${c}/`)).toEqual([]); // released after the manifest
    expect(await uploads(`objects/${c}/`)).toEqual([]);
  });

  it('that lost its lease refuses to write a manifest over an object gc took (retryably), and a retry commits it', async () => {
    const c = uniqueCampaign('lost');
    const gate = deferred();
    const slow = storeWith({
      before: async (cmd) => {
        if (is(cmd, 'PutObjectCommand') && keyOf(cmd).startsWith(`objects/${c}/ck/b.`)) await gate.promise;
      },
    });
    const objects = { a: randomBytes(1000), b: randomBytes(1000) };
    const commit = slow.commit({ ...base, id: `${c}/ck` }, objects).catch((e) => e);
    await waitFor('object a', async () => (await listed(`objects/${c}/ck/a.`)).length === 1);
    // A lease expiry of 0 takes every lease as stale, as if the writer had been paused for the whole grace period.
    const r = await store.gc({ graceMs: 0, leaseExpiryMs: 0 });
    expect(r.expired).toContain(`leases/${c}/ck.json`);
    expect(r.removed.filter((k) => k.startsWith(`objects/${c}/ck/a.`))).toHaveLength(1);
    gate.resolve();
    const err = await commit;
    expect(err).toBeInstanceOf(CheckpointUploadError);
    expect(err.message).toContain('"a"');
    expect(isRetryable(failureType(err))).toBe(true);
    expect(await store.manifest(`${c}/ck`)).toBeUndefined();

    expect((await store.commit({ ...base, id: `${c}/ck` }, objects)).created).toBe(true);
    expect(Buffer.compare((await store.load(`${c}/ck`)).objects.a, objects.a)).toBe(0);
  });
});

describe('incomplete multipart uploads', () => {
  it('a failed multipart upload is aborted, even when lib-storage’s own abort fails', async () => {
    const c = uniqueCampaign('mpfail');
    let aborts = 0;
    const failing = storeWith(
      {
        before: (cmd) => {
          if (!keyOf(cmd).startsWith(`objects/${c}/`)) return;
          if (is(cmd, 'UploadPartCommand') && cmd.input.PartNumber === 2)
            throw Object.assign(new Error('injected part failure'), { name: 'Injected' });
          if (is(cmd, 'AbortMultipartUploadCommand') && aborts++ === 0)
            throw Object.assign(new Error('injected abort failure'), { name: 'Injected' });
        },
      },
      { multipartThresholdBytes: 5 * MiB, partSizeBytes: 5 * MiB, queueSize: 1 },
    );
    await expect(failing.commit({ ...base, id: `${c}/ck` }, { big: randomBytes(11 * MiB) })).rejects.toThrow(/injected/);
    expect(aborts).toBe(2);
    expect(await uploads(`objects/${c}/`)).toEqual([]);
    expect(await store.manifest(`${c}/ck`)).toBeUndefined();
    expect(await listed(`leases/${c}/`)).toEqual([]);
  });

  it('gc aborts one left by a crashed writer once older than the grace period', async () => {
    const c = uniqueCampaign('mpleft');
    const key = `objects/${c}/ck/big.0123456789abcdef`;
    const mpu = await store.client.send(new CreateMultipartUploadCommand({ Bucket: store.bucket, Key: key }));
    await store.client.send(
      new UploadPartCommand({ Bucket: store.bucket, Key: key, UploadId: mpu.UploadId, PartNumber: 1, Body: randomBytes(1000) }),
    );
    expect((await store.gc({ graceMs: 3_600_000 })).aborted).not.toContain(key); // a writer may still be at it
    expect(await uploads(`objects/${c}/`)).toHaveLength(1);
    expect((await store.gc({ graceMs: 0 })).aborted).toContain(key);
    expect(await uploads(`objects/${c}/`)).toEqual([]);
  });
});

describe('published weights shared by two runs', () => {
  let model: Transformer;
  beforeAll(async () => {
    await initBackend();
    model = new Transformer(modelConfig({ vocabSize: 101, contextLength: 16, dModel: 16, nLayers: 2, nHeads: 2, dFF: 32 }), new Prng(7));
  });
  afterAll(() => model?.dispose());
  const publish = (s: CheckpointStore, holder: string) => publishWeights(s, { config: model.config, weights: model.getWeights() }, holder);

  it('one run finishing does not delete what the other still uses; the last one out does', async () => {
    const a = `${uniqueCampaign('runa')}.1`;
    const b = `${uniqueCampaign('runb')}.1`;
    const ref = await publish(store, a);
    expect((await publish(store, b)).sha256).toBe(ref.sha256); // the same bits: one shared key
    expect(await releaseWeights(store, ref, a)).toBe(false);
    expect(await exists(weightsKey(ref))).toBe(true);
    // gc leaves held weights alone however old they are.
    expect((await store.gc({ graceMs: 0 })).removed).not.toContain(weightsKey(ref));
    const cache = new ModelCache((ref) => readWeights(store, ref));
    expect(await cache.find(ref)).toBeDefined();
    expect(await releaseWeights(store, ref, b)).toBe(true);
    expect(await exists(weightsKey(ref))).toBe(false);
    expect(await listed(`${weightsKey(ref)}.`)).toEqual([]); // no marker left
  });

  it('a run publishing while the last holder deletes them gets them written again', async () => {
    const a = `${uniqueCampaign('runa')}.2`;
    const b = `${uniqueCampaign('runb')}.2`;
    const ref = await publish(store, a);
    const key = weightsKey(ref);
    const deleting = deferred();
    const bWrote = deferred();
    // A has seen no holder under its deletion marker and is about to delete when B publishes; A's delete
    // waits until B has written the object (or a second, where B rightly waits for A to finish first).
    const releasing = storeWith({
      before: async (cmd) => {
        if (is(cmd, 'DeleteObjectsCommand') && cmd.input.Delete.Objects.some((o: any) => o.Key === key)) {
          deleting.resolve();
          await Promise.race([bWrote.promise, new Promise((r) => setTimeout(r, 1000))]);
        }
      },
    });
    const publishing = storeWith({
      after: (cmd) => {
        if (is(cmd, 'PutObjectCommand') && keyOf(cmd) === key) bWrote.resolve();
      },
    });
    const released = releaseWeights(releasing, ref, a);
    await deleting.promise;
    const [gone] = await Promise.all([released, publish(publishing, b)]);
    expect(gone).toBe(true); // A deleted the object ...
    expect(await exists(key)).toBe(true); // ... and B wrote it again after that
    expect(await new ModelCache((ref) => readWeights(store, ref)).find(ref)).toBeDefined();
    expect(await releaseWeights(store, ref, b)).toBe(true);
  });

  it('gc removes weights whose holds are stale', async () => {
    const a = `${uniqueCampaign('crashed')}.3`;
    const ref = await publish(store, a);
    expect((await store.gc({ graceMs: 0 })).removed).not.toContain(weightsKey(ref));
    const { removed, expired } = await store.gc({ graceMs: 0, holdExpiryMs: 0 });
    expect(removed).toContain(weightsKey(ref));
    expect(expired).toContain(`${weightsKey(ref)}.refs/${a}`);
    expect(await listed(weightsKey(ref))).toEqual([]);
  });
});

describe('promotion', () => {
  /** Two promotions of one schedule, run concurrently; both read the pointer before either writes, and `second` writes last. */
  async function race(schedule: string, first: { id: string; accuracy: number }, second: { id: string; accuracy: number }) {
    const secondRead = deferred();
    const firstWrote = deferred();
    const pointer = `promoted/${schedule}.json`;
    const firstStore = storeWith({
      before: async (cmd) => {
        if (is(cmd, 'PutObjectCommand') && keyOf(cmd) === pointer) await secondRead.promise;
      },
      after: (cmd) => {
        if (is(cmd, 'PutObjectCommand') && keyOf(cmd) === pointer) firstWrote.resolve();
      },
    });
    const secondStore = storeWith({
      before: async (cmd) => {
        if (is(cmd, 'PutObjectCommand') && keyOf(cmd) === pointer) await firstWrote.promise;
      },
      after: (cmd) => {
        // An absent pointer answers with an error: that read counts too.
        if (is(cmd, 'GetObjectCommand') && keyOf(cmd) === pointer) secondRead.resolve();
      },
    });
    const promote = (s: CheckpointStore, p: { id: string; accuracy: number }) =>
      promotionActivities(s).promote({
        schedule,
        checkpoint: { id: p.id, sha256: 'x'.repeat(64), step: 0 },
        accuracy: p.accuracy,
        campaignId: p.id.split('/')[0],
      });
    return Promise.all([promote(firstStore, first), promote(secondStore, second)]);
  }

  it('two overlapping runs: the worse one writing second leaves the better one promoted (first pointer, then a moved one)', async () => {
    const schedule = uniqueCampaign('sched');
    const ids: Record<string, string> = {};
    for (const label of ['better', 'worse', 'best', 'good']) {
      ids[label] = `${uniqueCampaign(label)}/final`;
      await store.commit({ ...base, id: ids[label] }, { weights: randomBytes(100) });
    }
    const promoted = () => promotionActivities(store).getPromoted({ schedule });

    // No pointer yet: both write with If-None-Match; the worse one's write is refused, it re-reads and yields.
    const [, worse] = await race(schedule, { id: ids.better, accuracy: 0.8 }, { id: ids.worse, accuracy: 0.4 });
    expect((await promoted())?.checkpoint.id).toBe(ids.better);
    expect(worse.checkpoint.id).toBe(ids.better); // what is in force
    expect(await store.isKept(ids.better)).toBe(true);
    expect(await store.isKept(ids.worse)).toBe(false); // the loser takes its keep mark back

    // A pointer there: both write with If-Match on the ETag they read; the later, worse one re-decides.
    await race(schedule, { id: ids.best, accuracy: 0.9 }, { id: ids.good, accuracy: 0.85 });
    expect((await promoted())?.checkpoint.id).toBe(ids.best);
    expect((await promoted())?.accuracy).toBe(0.9);
    expect(await store.isKept(ids.good)).toBe(false);

    // The better one writing second still wins: it re-reads after its refused write and replaces the worse one.
    const late = `${uniqueCampaign('late')}/final`;
    const early = `${uniqueCampaign('early')}/final`;
    for (const id of [late, early]) await store.commit({ ...base, id }, { weights: randomBytes(100) });
    await race(schedule, { id: early, accuracy: 0.91 }, { id: late, accuracy: 0.95 });
    expect((await promoted())?.checkpoint.id).toBe(late);
  });
});

describe('promotion decisions', () => {
  it('a caller that names the promotion it compared against keeps its decision while the pointer still names it', async () => {
    const schedule = uniqueCampaign('sched');
    const [old, fresh, other] = await Promise.all(
      ['old', 'fresh', 'other'].map(async (label) => {
        const id = `${uniqueCampaign(label)}/final`;
        await store.commit({ ...base, id }, { weights: randomBytes(100) });
        return { id, sha256: 'y'.repeat(64), step: 0 };
      }),
    );
    const acts = promotionActivities(store);
    await acts.promote({ schedule, checkpoint: old, accuracy: 0.6, campaignId: 'c-old' });
    // A negative gate (prefer the fresh model unless 0.1 worse), decided against `old`, which is still promoted.
    await acts.promote({ schedule, checkpoint: fresh, accuracy: 0.55, campaignId: 'c-fresh', expected: old.id, minImprovement: -0.1 });
    expect((await acts.getPromoted({ schedule }))?.checkpoint.id).toBe(fresh.id);
    // Decided against `old`, but the pointer moved on: re-decided against `fresh` with the caller's gate.
    const r = await acts.promote({
      schedule,
      checkpoint: other,
      accuracy: 0.4,
      campaignId: 'c-other',
      expected: old.id,
      minImprovement: -0.1,
    });
    expect(r.checkpoint.id).toBe(fresh.id);
    expect((await acts.getPromoted({ schedule }))?.checkpoint.id).toBe(fresh.id);
    expect(await store.isKept(other.id)).toBe(false);
  });
});

describe('t1 checkpoints gc', () => {
  it('reports aborted uploads and expired holds, and checks its flags', async () => {
    const r = await t1('checkpoints', 'gc', '--grace-minutes', '60', '--hold-expiry-hours', '24', '--json');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({
      removed: expect.any(Array),
      bytes: expect.any(Number),
      aborted: expect.any(Array),
      expired: expect.any(Array),
    });
    const text = await t1('checkpoints', 'gc');
    expect(text.stdout).toMatch(/aborted \d+ incomplete upload\(s\)/);
    const bad = await t1('checkpoints', 'gc', '--hold-expiry-hours', '-1');
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('--hold-expiry-hours');
  });
});
