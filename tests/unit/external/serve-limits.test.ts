/**
 * `t1 serve` limits (issue 30): a bounded queue (429 with Retry-After), a per-request timeout that
 * stops the generation, work cancelled when the client goes away, a max_tokens cap, a constant-time
 * API key check, and no serving beyond loopback without a key.
 */
import * as tf from '@tensorflow/tfjs';
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { externalCommands } from '../../../cli/commands/external';
import { UsageError } from '../../../cli/args';
import { exposureError, serveCheckpoint, type ServedModel } from '../../../external/serve';
import { initBackend } from '../../../model/backend';
import { modelConfig } from '../../../model/config';
import { Transformer } from '../../../model/transformer';
import { Prng } from '../../../util/prng';

/** Fast: a request of a few tokens takes milliseconds. */
let tiny: Transformer;
/** Slow: a greedy request for 1000 tokens in 64 rows runs for many seconds (it never reaches its end token). */
let slow: Transformer;
const servers: ServedModel[] = [];

beforeAll(async () => {
  await initBackend();
  tiny = new Transformer(modelConfig({ contextLength: 64, dModel: 16, nLayers: 1, nHeads: 2, dFF: 32 }), new Prng(1));
  slow = new Transformer(modelConfig({ contextLength: 1024, dModel: 64, nLayers: 2, nHeads: 2, dFF: 128 }), new Prng(1));
});

afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
  tiny?.dispose();
  slow?.dispose();
});

async function serve(o: Partial<Parameters<typeof serveCheckpoint>[0]> = {}): Promise<ServedModel> {
  const s = await serveCheckpoint({ model: tiny, name: 'm', port: 0, ...o });
  servers.push(s);
  return s;
}

const post = (s: ServedModel, body: object, init: RequestInit = {}) =>
  fetch(`${s.url}/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'm', prompt: '1+2=', ...body }),
    ...init,
  });

/** A request that keeps the slow model generating (unless stopped). */
const LONG = { max_tokens: 1000, n: 64, temperature: 0 };

async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('t1 serve: a bounded queue', () => {
  it('answers a burst of 200 concurrent requests with 200s and 429s (with Retry-After), in bounded memory', async () => {
    const s = await serve({ maxQueue: 8 });
    const before = process.memoryUsage();
    let peak = before;
    const sampler = setInterval(() => {
      const m = process.memoryUsage();
      if (m.rss > peak.rss) peak = m;
    }, 5);
    const responses = await Promise.all(
      Array.from({ length: 200 }, async (_, i) => {
        const r = await post(s, { max_tokens: 8, seed: i });
        return { status: r.status, retryAfter: r.headers.get('retry-after'), body: (await r.json()) as any };
      }),
    );
    clearInterval(sampler);
    const after = process.memoryUsage();
    const mb = (x: number) => Math.round(x / 2 ** 20);
    const ok = responses.filter((r) => r.status === 200);
    const busy = responses.filter((r) => r.status === 429);
    console.info(
      `[burst] ${ok.length} x 200, ${busy.length} x 429; rss ${mb(before.rss)} -> peak ${mb(peak.rss)} -> ${mb(after.rss)} MB; heapUsed ${mb(before.heapUsed)} -> ${mb(after.heapUsed)} MB`,
    );

    expect(responses).toHaveLength(200);
    expect(ok.length + busy.length).toBe(200);
    expect(ok.length).toBeGreaterThanOrEqual(9); // the one generating and 8 waiting
    expect(busy.length).toBeGreaterThan(0);
    for (const r of ok) expect(r.body.choices).toHaveLength(1);
    for (const r of busy) {
      expect(Number(r.retryAfter)).toBeGreaterThanOrEqual(1);
      expect(Number.isInteger(Number(r.retryAfter))).toBe(true);
      expect(r.body.error).toMatchObject({ type: 'rate_limit_error', code: 'rate_limit_exceeded', param: null });
      expect(r.body.error.message).toMatch(/server busy/);
    }
    expect(s.completions()).toBe(ok.length);
    expect(s.stats()).toMatchObject({ queued: 0, generating: 0, generations: ok.length, rejected: busy.length, cancelled: 0 });
    // Loose: 200 small requests, 9 at a time, cost a few MB; an unbounded queue of generations would cost more, not this.
    expect(after.heapUsed - before.heapUsed).toBeLessThan(64 * 2 ** 20);
    expect(peak.rss - before.rss).toBeLessThan(256 * 2 ** 20);
  });

  it('with maxQueue 0 serves one request at a time and refuses the rest', async () => {
    const s = await serve({ model: slow, maxQueue: 0 });
    const long = new AbortController();
    const first = post(s, LONG, { signal: long.signal }).catch((e) => e);
    await until(() => s.stats().generating === 1, 'the first generation');
    const r = await post(s, { max_tokens: 1 });
    expect(r.status).toBe(429);
    expect(r.headers.get('retry-after')).toMatch(/^\d+$/);
    long.abort();
    await first;
    await until(() => s.stats().generating === 0, 'the stop');
    expect((await post(s, { max_tokens: 1 })).status).toBe(200);
  });
});

describe('t1 serve: clients that go away', () => {
  it('drops a request whose client disconnects while it waits: it is never generated nor answered', async () => {
    const s = await serve({ model: slow, maxQueue: 4 });
    const a = new AbortController();
    const b = new AbortController();
    const first = post(s, LONG, { signal: a.signal }).catch((e) => e);
    await until(() => s.stats().generating === 1, 'the first generation');
    const second = post(s, { max_tokens: 4 }, { signal: b.signal }).catch((e) => e);
    await until(() => s.stats().queued === 1, 'the second request queued');
    b.abort();
    expect(await second).toBeInstanceOf(Error);
    await until(() => s.stats().queued === 0 && s.stats().cancelled === 1, 'the second request dropped');
    a.abort();
    expect(await first).toBeInstanceOf(Error);
    await until(() => s.stats().generating === 0 && s.stats().cancelled === 2, 'the first generation stopped');
    expect(s.stats().generations).toBe(1); // the dropped request never started
    expect(s.completions()).toBe(0);
  });

  it('stops the generation of a client that disconnects (leaking no tensors); the next request is served promptly', async () => {
    const s = await serve({ model: slow });
    expect((await post(s, { max_tokens: 2 })).status).toBe(200); // warm-up: compiled kernels and allocations
    const tensors = tf.memory().numTensors;
    const ac = new AbortController();
    const gone = post(s, LONG, { signal: ac.signal }).catch((e) => e);
    await until(() => s.stats().generating === 1, 'the generation');
    // The server stays responsive while it generates: the event loop turns between tokens.
    const t0 = performance.now();
    expect((await fetch(`${s.url}/models`)).status).toBe(200);
    expect(performance.now() - t0).toBeLessThan(1000);
    // Queued behind the long generation, then served once it stops.
    const next = post(s, { max_tokens: 4 });
    await until(() => s.stats().queued === 1, 'the next request queued');
    await new Promise((r) => setTimeout(r, 100));
    ac.abort();
    const t1 = performance.now();
    expect(await gone).toBeInstanceOf(Error);
    const r = await next;
    expect(r.status).toBe(200);
    expect(((await r.json()) as any).choices).toHaveLength(1);
    // 1000 tokens in 64 rows take many seconds on this model: it was stopped within a step.
    expect(performance.now() - t1).toBeLessThan(2000);
    expect(s.stats()).toMatchObject({ generating: 0, queued: 0, generations: 3, cancelled: 1 });
    expect(s.completions()).toBe(2); // the warm-up and the next; never the one whose client went away
    expect(tf.memory().numTensors).toBe(tensors);
  });
});

describe('t1 serve: timeouts', () => {
  /** A POST of `body`: all of it, or its first 10 bytes now and the rest on `more()`; `answer` is its status and parsed body. */
  function rawPost(s: ServedModel, body: string, sendAll: boolean) {
    const len = Buffer.byteLength(body);
    let req!: ReturnType<typeof request>;
    const answer = new Promise<{ status: number; body: any }>((resolve, reject) => {
      req = request(`${s.url}/completions`, { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': len } });
      req.on('response', (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (text += c)).on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(text) }));
      });
      req.on('error', reject);
      req.write(body.slice(0, sendAll ? len : 10));
    });
    return { answer, more: () => req.end(body.slice(10)) };
  }

  it('fails a generating request with 504 past requestTimeoutMs, stopping its generation', async () => {
    const s = await serve({ model: slow, requestTimeoutMs: 500 });
    const t0 = performance.now();
    const r = await post(s, LONG);
    expect(performance.now() - t0).toBeLessThan(3000);
    expect(r.status).toBe(504);
    expect(((await r.json()) as any).error).toMatchObject({ type: 'timeout', message: 'request timed out after 0.5 s generating' });
    expect(s.stats()).toMatchObject({ generating: 0, queued: 0, generations: 1, timedOut: 1 });
    expect(s.completions()).toBe(0);
    expect((await post(s, { max_tokens: 2 })).status).toBe(200);
  });

  it('fails a request still waiting its turn with 504, and never generates it', async () => {
    const s = await serve({ model: slow, requestTimeoutMs: 1500 });
    // `early` arrives first (its clock starts) but finishes its body after `long` has the model: it waits behind it.
    const early = rawPost(s, JSON.stringify({ model: 'm', prompt: '1+2=', max_tokens: 2 }), false);
    await new Promise((r) => setTimeout(r, 50));
    const long = post(s, LONG);
    await until(() => s.stats().generating === 1, 'the long generation');
    early.more();
    await until(() => s.stats().queued === 1, 'the early request queued');
    const a = await early.answer;
    expect(a.status).toBe(504);
    expect(a.body.error.message).toBe('request timed out after 1.5 s waiting its turn');
    expect(s.stats()).toMatchObject({ generating: 1, queued: 0, generations: 1, timedOut: 1 });
    const b = await long;
    expect(b.status).toBe(504);
    expect(((await b.json()) as any).error.message).toBe('request timed out after 1.5 s generating');
    expect(s.stats()).toMatchObject({ generating: 0, queued: 0, generations: 1, timedOut: 2 });
    expect(s.completions()).toBe(0);
  });

  it('fails a request whose body does not arrive in time with 408', async () => {
    const s = await serve({ requestTimeoutMs: 300 });
    const { status, body } = await rawPost(s, JSON.stringify({ model: 'm', prompt: '1+2=' }), false).answer; // the rest never sent
    expect(status).toBe(408);
    expect(body.error.message).toBe('request body not received within 0.3 s');
    expect(s.stats()).toMatchObject({ queued: 0, timedOut: 1 });
  });
});

describe('t1 serve: max_tokens', () => {
  it('refuses max_tokens over the cap with 400 naming the field; the cap is the default', async () => {
    const byContext = await serve();
    const r = await post(byContext, { max_tokens: 65 });
    expect(r.status).toBe(400);
    expect(((await r.json()) as any).error).toMatchObject({ param: 'max_tokens', message: expect.stringContaining('max_tokens') });
    expect((await post(byContext, { max_tokens: 64 })).status).toBe(200);

    const capped = await serve({ maxTokens: 5 });
    const over = await post(capped, { max_tokens: 6 });
    expect(over.status).toBe(400);
    expect(((await over.json()) as any).error.message).toBe("max_tokens: 6 is over this server's limit of 5");
    const dflt = (await (await post(capped, { temperature: 0, n: 4 })).json()) as any;
    for (const c of dflt.choices) expect(c.finish_reason === 'stop' || c.text.replace(/<[A-Z]+>/g, '.').length === 5).toBe(true);
    expect(dflt.usage.completion_tokens).toBeLessThanOrEqual(20);
    expect((await post(capped, { n: 65 })).status).toBe(400); // n stays capped at 64
  });
});

describe('t1 serve: the API key and the host', () => {
  it('answers 401 to a missing or wrong key of any length, and serves the right one', async () => {
    const key = 'sk-right-key-0123456789';
    const s = await serve({ apiKey: key });
    const asKey = (authorization?: string) =>
      post(s, { max_tokens: 1 }, { headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) } });
    for (const auth of [
      undefined,
      'Bearer',
      'Bearer x',
      `Bearer ${key.slice(0, -1)}`,
      `Bearer ${key}X`,
      `Bearer ${key}${'y'.repeat(5000)}`,
      key,
    ]) {
      const r = await asKey(auth);
      expect(r.status, String(auth?.length)).toBe(401);
      expect(((await r.json()) as any).error.message).not.toContain(key);
    }
    expect((await fetch(`${s.url}/models`)).status).toBe(401);
    expect((await asKey(`Bearer ${key}`)).status).toBe(200);
    expect(s.completions()).toBe(1);
  });

  it('refuses a host beyond loopback without an API key, in serveCheckpoint and the CLI', async () => {
    for (const host of ['0.0.0.0', '::', '192.168.1.10', 'example.com'])
      await expect(serveCheckpoint({ model: tiny, name: 'm', port: 0, host })).rejects.toThrow(
        `--host ${host}: serving beyond loopback (127.0.0.1, ::1, localhost) needs an API key; set one with --api-key-env VAR`,
      );
    for (const host of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost', 'LOCALHOST'])
      expect(exposureError(host, false)).toBeUndefined();
    expect(exposureError('0.0.0.0', true)).toBeUndefined();
    const open = await serve({ host: 'localhost' });
    expect((await fetch(`${open.url}/models`)).status).toBe(200);
    const keyed = await serve({ host: '0.0.0.0', apiKey: 'k' });
    expect(keyed.url).toMatch(/^http:\/\/0\.0\.0\.0:\d+\/v1$/);

    const cli = externalCommands.find((c) => c.path.join(' ') === 'serve')!;
    const err = await cli.run({ host: '0.0.0.0' }, ['campaign/ckpt']).catch((e) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect(err.message).toMatch(/^--host 0\.0\.0\.0: .*--api-key-env/);
    expect(err.message).not.toContain('\n');
    const bad = await cli.run({ 'max-queue': '-1' }, ['campaign/ckpt']).catch((e) => e);
    expect(bad).toBeInstanceOf(UsageError);
    expect(bad.message).toBe('--max-queue: expected an integer >= 0, got "-1"');
  });
});
