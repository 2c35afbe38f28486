import { loadConnection } from '../../config/connection';
import { CheckpointStore, EVAL_CACHE_MAX_AGE_MS, HOLD_EXPIRY_MS } from '../../storage/checkpoints';
import { contentDigest, sizeOf } from '../../storage/manifest';
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
        const mb = (bytes: number) => `${(bytes / 1e6).toFixed(2).padStart(9)} MB`;
        const totals = new Map<string, { n: number; bytes: number }>();
        for (const m of ms) {
          const size = sizeOf(m);
          const t = totals.get(m.campaign) ?? { n: 0, bytes: 0 };
          totals.set(m.campaign, { n: t.n + 1, bytes: t.bytes + size });
          console.log(
            `${m.id.padEnd(48)} ${m.kind.padEnd(7)} step ${String(m.step).padStart(6)}  ${mb(size)}  ${m.created}  ${contentDigest(m).slice(0, 12)}`,
          );
        }
        console.log('');
        for (const [campaign, t] of totals) console.log(`${`${campaign}: ${t.n} checkpoint(s)`.padEnd(69)}${mb(t.bytes)}`);
        const all = [...totals.values()].reduce((a, t) => ({ n: a.n + t.n, bytes: a.bytes + t.bytes }), { n: 0, bytes: 0 });
        console.log(`${`total: ${all.n} checkpoint(s) in ${totals.size} campaign(s)`.padEnd(69)}${mb(all.bytes)}`);
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
    summary:
      'Remove objects no manifest references and incomplete multipart uploads (left by crashed writers; a commit in progress keeps its own by a lease it refreshes every minute), published weights no run holds and rollout shards (left by crashed RL steps) older than --grace-minutes, holds on weights older than --hold-expiry-hours, and evaluation-cache entries older than --eval-cache-days',
    usage: 'checkpoints gc [--grace-minutes N] [--hold-expiry-hours H] [--eval-cache-days D] [--json]',
    options: {
      'grace-minutes': { type: 'string' },
      'hold-expiry-hours': { type: 'string' },
      'eval-cache-days': { type: 'string' },
      json: { type: 'boolean' },
      ...connectionOptions,
    },
    run: (v) =>
      withStore(v, async (store) => {
        const nonNegative = (flag: string, fallback: number) => {
          const x = v[flag] === undefined ? fallback : Number(v[flag]);
          if (!(x >= 0)) throw new UsageError(`--${flag}: expected a number >= 0, got "${v[flag]}"`);
          return x;
        };
        const grace = nonNegative('grace-minutes', 60);
        const holdHours = nonNegative('hold-expiry-hours', HOLD_EXPIRY_MS / 3_600_000);
        const days = nonNegative('eval-cache-days', EVAL_CACHE_MAX_AGE_MS / 86_400_000);
        const r = await store.gc({ graceMs: grace * 60_000, holdExpiryMs: holdHours * 3_600_000, evalCacheMaxAgeMs: days * 86_400_000 });
        console.log(
          v.json
            ? JSON.stringify(r)
            : `removed ${r.removed.length} orphaned object(s) and stale cache entries, ${(r.bytes / 1e6).toFixed(2)} MB; aborted ${r.aborted.length} incomplete upload(s)`,
        );
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
