/**
 * The worker health endpoint (workers/health.ts), as a kubelet sees it: real HTTP requests to a
 * server on a free loopback port, judging stand-in workers whose state the test sets (no Temporal).
 */
import { execFileSync } from 'node:child_process';
import { request } from 'node:http';
import type { State } from '@temporalio/worker';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../../../util/errors';
import { HealthServer, healthPort, liveness, readiness, type WatchedWorker } from '../../../workers/health';

class FakeWorker implements WatchedWorker {
  readonly options: { taskQueue: string };
  constructor(
    taskQueue: string,
    public state: State = 'INITIALIZED',
  ) {
    this.options = { taskQueue };
  }
  getState(): State {
    return this.state;
  }
}

const LOOPBACK = { host: '127.0.0.1' };
let server: HealthServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

interface Answer {
  status: number;
  type: string | undefined;
  text: string;
  body: any;
}

function get(path: string, method = 'GET'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: server!.port, path, method }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => {
        let body: unknown;
        try {
          body = JSON.parse(text);
        } catch {
          body = undefined;
        }
        resolve({ status: res.statusCode!, type: res.headers['content-type'], text, body });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

describe('worker health endpoint over HTTP', () => {
  it('is alive but not ready while starting, and says at what stage', async () => {
    server = await HealthServer.start(0, LOOPBACK);
    server.setStage('starting a compute process (loading the backend)');
    const live = await get('/healthz');
    expect(live).toMatchObject({ status: 200, type: 'application/json', body: { status: 'starting' } });
    const ready = await get('/readyz');
    expect(ready.status).toBe(503);
    expect(ready.body.reason).toBe('starting: starting a compute process (loading the backend)');
  });

  it('fails liveness when start-up takes longer than it may, naming the stage', async () => {
    let now = 1_000;
    server = await HealthServer.start(0, { ...LOOPBACK, startupLimitMs: 60_000, now: () => now });
    server.setStage('checking S3');
    now += 60_000;
    expect((await get('/healthz')).status).toBe(200);
    now += 1;
    expect(await get('/healthz')).toMatchObject({ status: 503, body: { status: 'failed', reason: 'start-up stalled: checking S3' } });
    server.watch([new FakeWorker('t1-cpu', 'RUNNING')]); // started after all: the limit no longer applies
    expect((await get('/healthz')).status).toBe(200);
  });

  it('is ready once every worker is RUNNING, and not before', async () => {
    server = await HealthServer.start(0, LOOPBACK);
    const gpu = new FakeWorker('t1-gpu');
    const eval_ = new FakeWorker('t1-eval');
    server.watch([gpu, eval_]);
    expect((await get('/healthz')).status).toBe(200);
    let ready = await get('/readyz');
    expect(ready.status).toBe(503);
    expect(ready.body).toEqual({
      status: 'not ready',
      reason: 'worker on t1-gpu is INITIALIZED',
      workers: { 't1-gpu': 'INITIALIZED', 't1-eval': 'INITIALIZED' },
    });
    gpu.state = 'RUNNING';
    ready = await get('/readyz');
    expect(ready.status).toBe(503);
    expect(ready.body.reason).toBe('worker on t1-eval is INITIALIZED');
    eval_.state = 'RUNNING';
    ready = await get('/readyz');
    expect(ready).toMatchObject({ status: 200, body: { status: 'ready', workers: { 't1-gpu': 'RUNNING', 't1-eval': 'RUNNING' } } });
    expect(await get('/healthz')).toMatchObject({ status: 200, body: { status: 'alive' } });
  });

  it('stays alive while shutting down gracefully, but is no longer ready', async () => {
    server = await HealthServer.start(0, LOOPBACK);
    const w = new FakeWorker('t1-rollout', 'RUNNING');
    server.watch([w]);
    for (const state of ['STOPPING', 'DRAINING', 'DRAINED'] as const) {
      w.state = state;
      expect((await get('/healthz')).status, state).toBe(200);
      expect((await get('/readyz')).status, state).toBe(503);
    }
  });

  it.each(['FAILED', 'STOPPED'] as const)('fails liveness when a worker is %s, naming it in one line of JSON', async (state) => {
    server = await HealthServer.start(0, LOOPBACK);
    server.watch([new FakeWorker('t1-cpu', 'RUNNING'), new FakeWorker('t1-gpu', state)]);
    const live = await get('/healthz');
    expect(live.status).toBe(503);
    expect(live.type).toBe('application/json');
    expect(live.text.trimEnd()).not.toContain('\n');
    expect(live.text.endsWith('\n')).toBe(true);
    expect(live.body).toEqual({
      status: 'failed',
      reason: `worker on t1-gpu is ${state}`,
      workers: { 't1-cpu': 'RUNNING', 't1-gpu': state },
    });
    expect((await get('/readyz')).status).toBe(503);
  });

  it('serves nothing else', async () => {
    server = await HealthServer.start(0, LOOPBACK);
    server.watch([new FakeWorker('t1-cpu', 'RUNNING')]);
    for (const path of ['/', '/metrics', '/healthz/', '/readyz/x', '/constructor', '/__proto__', '/../healthz']) {
      expect((await get(path)).status, path).toBe(404);
    }
    for (const method of ['POST', 'PUT', 'DELETE', 'HEAD']) expect((await get('/healthz', method)).status, method).toBe(404);
    expect((await get('/healthz?verbose=1')).status).toBe(200); // a query string is ignored
  });

  it('refuses a port in use instead of starting without an endpoint', async () => {
    server = await HealthServer.start(0, LOOPBACK);
    await expect(HealthServer.start(server.port, LOOPBACK)).rejects.toMatchObject({ code: 'EADDRINUSE' });
  });

  it('does not hold the process open', () => {
    // A process with nothing left but the endpoint exits: the worker's end, not the server's, ends `t1 worker`.
    const module = new URL('../../../workers/health.ts', import.meta.url).href;
    const script = `const { HealthServer } = await import(${JSON.stringify(module)}); await HealthServer.start(0, { host: '127.0.0.1' }); console.log('up');`;
    const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(out.trim()).toBe('up');
  });
});

describe('verdicts', () => {
  it('an empty worker list is never ready', () => {
    expect(readiness([], 'x').ok).toBe(false);
    expect(liveness([], 'x').ok).toBe(true);
  });
});

describe('healthPort', () => {
  it('is off unless the flag or T1_HEALTH_PORT sets it, the flag first', () => {
    expect(healthPort(undefined, {})).toBeUndefined();
    expect(healthPort(undefined, { T1_HEALTH_PORT: '' })).toBeUndefined();
    expect(healthPort(undefined, { T1_HEALTH_PORT: '8081' })).toBe(8081);
    expect(healthPort('9090', { T1_HEALTH_PORT: '8081' })).toBe(9090);
  });

  it.each([
    ['--health-port', 'abc', {}],
    ['--health-port', '0', {}],
    ['--health-port', '65536', {}],
    ['--health-port', '', {}],
    ['T1_HEALTH_PORT', undefined, { T1_HEALTH_PORT: '80a' }],
    ['T1_HEALTH_PORT', undefined, { T1_HEALTH_PORT: '-1' }],
  ])('refuses a bad port, naming %s', (source, flag, env) => {
    expect(() => healthPort(flag, env)).toThrow(ConfigError);
    expect(() => healthPort(flag, env)).toThrow(new RegExp(`^${source}: expected a port number from 1 to 65535`));
  });
});
