import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { PutObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { afterAll, describe, expect, it } from 'vitest';
import { CheckpointConflictError, CheckpointCorruptError, CheckpointStore } from '../../storage/checkpoints';
import { testConnection, uniqueCampaign } from './helpers';

const conn = testConnection();
const store = new CheckpointStore(conn.s3);
afterAll(() => store.close());

const base = { kind: 'sft' as const, configHash: 'cfg-1', backend: 'test' };

describe('checkpoint store (real S3 server)', () => {
  it('round-trips a checkpoint with a multipart object over 16 MB', async () => {
    const c = uniqueCampaign('rt');
    const big = randomBytes(17 * 1024 * 1024 + 123);
    const small = new TextEncoder().encode('{"step": 3}');
    const { manifest, created } = await store.commit({ ...base, id: `${c}/sft-3`, step: 3 }, { weights: big, state: small });
    expect(created).toBe(true);
    expect(manifest.objects.map((o) => o.name).sort()).toEqual(['state', 'weights']);
    const loaded = await store.load(`${c}/sft-3`);
    expect(Buffer.compare(loaded.objects.weights, big)).toBe(0);
    expect(Buffer.from(loaded.objects.state).toString()).toBe('{"step": 3}');
    expect((await store.list({ campaign: c })).map((m) => m.id)).toEqual([`${c}/sft-3`]);
  });

  it('names the corrupted object on load and in verify', async () => {
    const c = uniqueCampaign('corrupt');
    const { manifest } = await store.commit({ ...base, id: `${c}/a` }, { weights: randomBytes(1000), optimizer: randomBytes(500) });
    const victim = manifest.objects.find((o) => o.name === 'optimizer')!;
    // Corrupt the stored bytes behind the store's back.
    await store.client.send(new PutObjectCommand({ Bucket: conn.s3.bucket, Key: victim.key, Body: randomBytes(500) }));
    const err = await store.load(`${c}/a`).catch((e) => e);
    expect(err).toBeInstanceOf(CheckpointCorruptError);
    expect(err.object).toBe('optimizer');
    expect(err.message).toContain('"optimizer"');
    const v = await store.verify(`${c}/a`);
    expect(v.ok).toBe(false);
    expect(v.objects.filter((o) => !o.ok).map((o) => o.name)).toEqual(['optimizer']);
  });

  it('a retried identical commit is a no-op; different content under the same id is refused', async () => {
    const c = uniqueCampaign('retry');
    const w = randomBytes(2048);
    const first = await store.commit({ ...base, id: `${c}/x`, step: 1 }, { weights: w });
    const again = await store.commit({ ...base, id: `${c}/x`, step: 1, meta: { tokensPerS: 123 } }, { weights: Buffer.from(w) });
    expect(again.created).toBe(false);
    expect(again.manifest.created).toBe(first.manifest.created);
    await expect(store.commit({ ...base, id: `${c}/x`, step: 1 }, { weights: randomBytes(2048) })).rejects.toBeInstanceOf(
      CheckpointConflictError,
    );
    expect(Buffer.compare((await store.load(`${c}/x`)).objects.weights, w)).toBe(0);
  });

  it('concurrent commits of different ids do not interfere', async () => {
    const c = uniqueCampaign('conc');
    const bodies = Array.from({ length: 8 }, () => randomBytes(64 * 1024));
    await Promise.all(bodies.map((b, i) => store.commit({ ...base, id: `${c}/ck-${i}`, step: i }, { weights: b })));
    const ms = await store.list({ campaign: c });
    expect(ms.map((m) => m.step).sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    for (let i = 0; i < 8; i++) expect(Buffer.compare((await store.load(`${c}/ck-${i}`)).objects.weights, bodies[i])).toBe(0);
  });

  it('a writer killed between objects and manifest leaves nothing visible, and gc removes its orphans', async () => {
    const c = uniqueCampaign('crash');
    const code = `
      import { CheckpointStore } from './storage/checkpoints';
      import { loadConnection } from './config/connection';
      const store = new CheckpointStore(loadConnection(JSON.parse(process.env.OVR)).s3);
      // Make the manifest write hang forever, after all objects are uploaded and verified.
      const send = store.client.send.bind(store.client);
      store.client.send = (cmd, ...rest) => {
        if (cmd.constructor.name === 'PutObjectCommand' && cmd.input.Key.startsWith('manifests/')) { console.log('OBJECTS-DONE'); return new Promise(() => {}); }
        return send(cmd, ...rest);
      };
      store.commit({ id: '${c}/doomed', kind: 'sft', configHash: 'h', backend: 't' }, { a: new Uint8Array(300000).fill(7), b: new Uint8Array(1000).fill(9) });
    `;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
      cwd: process.cwd(),
      env: { ...process.env, OVR: JSON.stringify((await import('vitest')).inject('stackOverrides')) },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d) => String(d).includes('OBJECTS-DONE') && resolve());
      child.on('exit', (code) => reject(new Error(`writer exited early with ${code}`)));
    });
    child.kill('SIGKILL');
    expect(await store.manifest(`${c}/doomed`)).toBeUndefined();
    await expect(store.load(`${c}/doomed`)).rejects.toThrow(/does not exist/);
    expect(await store.list({ campaign: c })).toEqual([]);
    const orphanKeys = async () =>
      ((await store.client.send(new ListObjectsV2Command({ Bucket: conn.s3.bucket, Prefix: `objects/${c}/` }))).Contents ?? []).map(
        (o) => o.Key,
      );
    expect(await orphanKeys()).toHaveLength(2);
    // Within the grace period a writer may still be running: gc keeps its objects.
    expect((await store.gc()).removed.filter((k) => k.includes(c))).toEqual([]);
    const { removed } = await store.gc({ graceMs: 0 });
    expect(removed.filter((k) => k.includes(c))).toHaveLength(2);
    expect(await orphanKeys()).toEqual([]);
  });

  it('lineage walks parents; retention keeps the last N plus marked ones', async () => {
    const c = uniqueCampaign('ret');
    let parent: string | null = null;
    for (let i = 0; i < 5; i++) {
      await store.commit({ ...base, kind: 'rl', id: `${c}/rl-${i}`, step: i, parent }, { weights: randomBytes(100) });
      parent = `${c}/rl-${i}`;
    }
    expect((await store.lineage(`${c}/rl-4`)).map((m) => m.step)).toEqual([4, 3, 2, 1, 0]);
    expect((await store.latest(c))!.id).toBe(`${c}/rl-4`);
    await store.markKeep(`${c}/rl-1`);
    const deleted = await store.retain({ prefix: `${c}/`, keepLast: 2 });
    expect(deleted.sort()).toEqual([`${c}/rl-0`, `${c}/rl-2`]);
    expect((await store.list({ campaign: c })).map((m) => m.step)).toEqual([1, 3, 4]);
    expect((await store.gc({ graceMs: 0 })).removed.filter((k) => k.includes(c))).toEqual([]);
  });

  it('ids lists a prefix without reading manifests; retention by prefix spares kept checkpoints and leaves no objects behind', async () => {
    const c = uniqueCampaign('del');
    for (const name of ['sft', 'sft-s000004', 'sft-s000008', 'rl-e0001-s000001'])
      await store.commit({ ...base, id: `${c}/${name}` }, { weights: randomBytes(64) });
    expect(await store.ids(`${c}/sft-s`)).toEqual([`${c}/sft-s000004`, `${c}/sft-s000008`]);
    await store.markKeep(`${c}/sft-s000008`);
    expect(await store.retain({ prefix: `${c}/sft-s`, keepLast: 0 })).toEqual([`${c}/sft-s000004`]); // the marked one stays
    expect(await store.retain({ prefix: `${c}/sft-s`, keepLast: 0 })).toEqual([]); // repeating it is a no-op
    expect(await store.ids(`${c}/sft`)).toEqual([`${c}/sft`, `${c}/sft-s000008`]);
    const left = await store.client.send(new ListObjectsV2Command({ Bucket: store.bucket, Prefix: `objects/${c}/sft-s000004/` }));
    expect(left.Contents ?? []).toEqual([]);
  });
});
