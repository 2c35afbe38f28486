import { createServer } from 'node:net';

/** A loopback port free a moment ago (bound, read, released), for a server a test must name the port of up front. */
export async function freePort(): Promise<number> {
  const s = createServer().listen(0, '127.0.0.1');
  await new Promise((r) => s.once('listening', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}
