/**
 * A compute process (see workers/compute.ts): loads the tfjs backend, builds the activities around
 * its own checkpoint store, and runs the calls its parent worker forwards, one at a time. It exits
 * when the parent goes away.
 */
import { createActivities } from '../activities';
import { runInScope } from '../activities/scope';
import { initBackend } from '../model/backend';
import { CheckpointStore } from '../storage/checkpoints';
import { fromError, type FromChild, type ToChild } from './compute';

const send = (m: FromChild) => process.send!(m);
let activities: Record<string, (input: any) => Promise<unknown>> | null = null;
const running = new Map<number, AbortController>();

process.on('message', async (m: ToChild) => {
  if (m.type === 'init') {
    const backend = (await initBackend()).name;
    activities = createActivities({
      store: new CheckpointStore(m.s3),
      backend,
      temporal: m.temporal,
      grants: m.grants,
    }) as unknown as typeof activities;
    return send({ type: 'ready', backend, activities: Object.keys(activities!) });
  }
  if (m.type === 'ping') return send({ type: 'alive' });
  if (m.type === 'cancel') return running.get(m.id)?.abort();
  const abort = new AbortController();
  running.set(m.id, abort);
  const scope = {
    heartbeatDetails: m.heartbeatDetails,
    heartbeat: (details?: unknown) => send({ type: 'heartbeat', id: m.id, details }),
    signal: abort.signal,
    log: (line: string) => console.error(`[compute] ${line}`),
  };
  try {
    const fn = activities?.[m.name];
    if (!fn) throw new Error(`compute process: no activity "${m.name}"`);
    send({ type: 'done', id: m.id, result: await runInScope(scope, () => fn(m.input)) });
  } catch (err) {
    send({ type: 'failed', id: m.id, error: fromError(err) });
  } finally {
    running.delete(m.id);
  }
});
process.on('disconnect', () => process.exit(0));
