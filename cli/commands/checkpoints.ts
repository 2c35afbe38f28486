import { loadConnection } from '../../config/connection';
import { CheckpointStore } from '../../storage/checkpoints';
import { contentDigest } from '../../storage/manifest';
import { connectionOptions, overridesFrom, UsageError, type Command } from '../args';

async function withStore<T>(v: Record<string, any>, fn: (s: CheckpointStore) => Promise<T>): Promise<T> {
  const store = new CheckpointStore(loadConnection(overridesFrom(v)).s3);
  try {
    return await fn(store);
  } finally {
    store.close();
  }
}

export const checkpointCommands: Command[] = [
  {
    path: ['checkpoints', 'ls'],
    summary: 'List committed checkpoints (manifests)',
    usage: 'checkpoints ls [--campaign C] [--kind K] [--json]',
    options: { campaign: { type: 'string' }, kind: { type: 'string' }, json: { type: 'boolean' }, ...connectionOptions },
    run: (v) =>
      withStore(v, async (store) => {
        const ms = await store.list({ campaign: v.campaign, kind: v.kind });
        if (v.json) return void console.log(JSON.stringify(ms));
        if (!ms.length) return void console.log('no checkpoints');
        for (const m of ms) {
          const size = m.objects.reduce((s, o) => s + o.size, 0);
          console.log(
            `${m.id.padEnd(48)} ${m.kind.padEnd(7)} step ${String(m.step).padStart(6)}  ${(size / 1e6).toFixed(2).padStart(9)} MB  ${m.created}  ${contentDigest(m).slice(0, 12)}`,
          );
        }
      }),
  },
  {
    path: ['checkpoints', 'verify'],
    summary: 'Re-read every object of a checkpoint and check its size and sha256',
    usage: 'checkpoints verify ID [--json]',
    options: { json: { type: 'boolean' }, ...connectionOptions },
    run: (v, pos) =>
      withStore(v, async (store) => {
        if (pos.length !== 1) throw new UsageError('expected exactly one checkpoint ID (<campaign>/<name>)');
        const r = await store.verify(pos[0]);
        if (v.json) console.log(JSON.stringify(r));
        else for (const o of r.objects) console.log(`${o.ok ? 'ok ' : 'BAD'} ${o.name}${o.detail ? `: ${o.detail}` : ''}`);
        return r.ok ? 0 : 1;
      }),
  },
  {
    path: ['checkpoints', 'gc'],
    summary: 'Remove objects no manifest references (left by crashed writers) older than --grace-minutes',
    usage: 'checkpoints gc [--grace-minutes N] [--json]',
    options: { 'grace-minutes': { type: 'string' }, json: { type: 'boolean' }, ...connectionOptions },
    run: (v) =>
      withStore(v, async (store) => {
        const grace = v['grace-minutes'] === undefined ? 60 : Number(v['grace-minutes']);
        if (!(grace >= 0)) throw new UsageError(`--grace-minutes: expected a number >= 0, got "${v['grace-minutes']}"`);
        const r = await store.gc({ graceMs: grace * 60_000 });
        console.log(v.json ? JSON.stringify(r) : `removed ${r.removed.length} orphaned object(s), ${(r.bytes / 1e6).toFixed(2)} MB`);
      }),
  },
  {
    path: ['checkpoints', 'keep'],
    summary: 'Mark a checkpoint to be kept by retention',
    usage: 'checkpoints keep ID',
    options: connectionOptions,
    run: (v, pos) =>
      withStore(v, async (store) => {
        if (pos.length !== 1) throw new UsageError('expected exactly one checkpoint ID (<campaign>/<name>)');
        await store.markKeep(pos[0]);
        console.log(`marked ${pos[0]} keep`);
      }),
  },
];
