/**
 * A compute process stand-in for the liveness tests: speaks workers/compute.ts's protocol, with
 * activities that compute for a while (event loop blocked, CPU busy), wait (event loop free, no
 * CPU) or hang (event loop blocked, no CPU).
 */
import { getPriority } from 'node:os';
import type { FromChild, ToChild } from '../../../workers/compute';

const send = (m: FromChild) => process.send!(m);
const activities: Record<string, (input: { ms: number }) => Promise<unknown>> = {
  async compute({ ms }) {
    const end = Date.now() + ms;
    let x = 0;
    while (Date.now() < end) x += Math.sqrt(x + 1);
    return x > 0;
  },
  wait: ({ ms }) => new Promise((resolve) => setTimeout(() => resolve(true), ms)),
  niceness: async () => getPriority(),
  async hang({ ms }) {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
    return true;
  },
};

process.on('message', async (m: ToChild) => {
  if (m.type === 'init') return send({ type: 'ready', backend: 'none', activities: Object.keys(activities) });
  if (m.type === 'ping') return send({ type: 'alive' });
  if (m.type !== 'run') return;
  send({ type: 'heartbeat', id: m.id, details: { started: m.name } });
  send({ type: 'done', id: m.id, result: await activities[m.name](m.input as { ms: number }) });
});
process.on('disconnect', () => process.exit(0));
