import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { CompletionClient, completionsUrl, EndpointError } from '../../../tasks/openai';

let server: Server | undefined;
afterEach(async () => {
  const s = server;
  server = undefined;
  if (!s) return;
  s.closeAllConnections(); // the client's keep-alive sockets would hold close() for seconds
  await new Promise((r) => s.close(r));
});

/** A local endpoint; `reply` gets the request number (1-based), the request and its parsed body. */
async function endpoint(reply: (count: number, req: IncomingMessage, body: any, res: ServerResponse) => void): Promise<string> {
  let count = 0;
  server = createServer(async (req, res) => {
    let text = '';
    for await (const c of req) text += c;
    reply(++count, req, JSON.parse(text), res);
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server!.address() as AddressInfo).port}`;
}

const params = { model: 'm', prompt: '1+1=', maxTokens: 4, temperature: 0, n: 2 };
const ok = (res: ServerResponse, body: unknown) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));

describe('OpenAI-compatible client', () => {
  it('builds the completions URL from a base, a /v1 or a full URL', () => {
    expect(completionsUrl('http://h:8000')).toBe('http://h:8000/v1/completions');
    expect(completionsUrl('http://h:8000/v1/')).toBe('http://h:8000/v1/completions');
    expect(completionsUrl('http://h:8000/v1', true)).toBe('http://h:8000/v1/chat/completions');
    expect(completionsUrl('http://h/x/v1/completions')).toBe('http://h/x/v1/completions');
  });

  it('retries twice-failing 503s with backoff, then returns the choices in index order', async () => {
    const seen: any[] = [];
    const url = await endpoint((count, req, body, res) => {
      seen.push({ body, auth: req.headers.authorization });
      if (count <= 2) return void res.writeHead(503).end('overloaded');
      ok(res, {
        choices: [
          { index: 1, text: ' 3', finish_reason: 'length' },
          { index: 0, text: '2', finish_reason: 'stop' },
        ],
      });
    });
    const client = new CompletionClient({ endpoint: url, apiKey: 'sk-test', backoffMs: 10 });
    const start = Date.now();
    expect(await client.complete(params)).toEqual([
      { text: '2', finishReason: 'stop' },
      { text: ' 3', finishReason: 'length' },
    ]);
    expect(Date.now() - start).toBeGreaterThanOrEqual(30); // 10 + 20 ms of backoff
    expect(seen).toHaveLength(3);
    expect(seen[2]).toEqual({ body: { model: 'm', prompt: '1+1=', max_tokens: 4, temperature: 0, n: 2 }, auth: 'Bearer sk-test' });
  });

  it('gives up after maxAttempts with a clear error that never shows the API key', async () => {
    const url = await endpoint((_c, req, _b, res) => void res.writeHead(500).end(`boom, you sent ${req.headers.authorization}`));
    const client = new CompletionClient({ endpoint: url, apiKey: 'sk-secret-123', maxAttempts: 3, backoffMs: 1 });
    const err = await client.complete(params).catch((e) => e);
    expect(err).toBeInstanceOf(EndpointError);
    expect(err.message).toMatch(/failed after 3 attempt\(s\); last: HTTP 500: boom/);
    expect(err.message).not.toContain('sk-secret-123');
  });

  it('does not retry a 400, and checks the number of choices', async () => {
    let calls = 0;
    const url = await endpoint((count, _r, body, res) => {
      calls = count;
      if (body.n === 2) return void res.writeHead(400).end('{"error":{"message":"bad n"}}');
      ok(res, { choices: [] });
    });
    const client = new CompletionClient({ endpoint: url, backoffMs: 1 });
    await expect(client.complete(params)).rejects.toThrow(/failed: HTTP 400: .*bad n/);
    expect(calls).toBe(1);
    await expect(client.complete({ ...params, n: 1 })).rejects.toThrow(/returned 0 choice\(s\), asked for 1/);
  });

  it('shows no body of a refusal (401, 403) and at most 80 characters of any other reply, control characters stripped', async () => {
    const url = await endpoint((count, _r, _b, res) => {
      if (count === 1) return void res.writeHead(401).end('{"error":"key sk-abc is invalid; internal token xyz"}');
      if (count === 2) return void res.writeHead(403).end('forbidden: internal-admin-page');
      res.writeHead(404).end(`\u001b]0;title\u0007${'line\n'.repeat(100)}`);
    });
    const client = new CompletionClient({ endpoint: url, apiKey: 'sk-abc' });
    const refused = await client.complete(params).catch((e) => e);
    expect(refused.message).toMatch(/failed: HTTP 401$/);
    expect((await client.complete(params).catch((e) => e)).message).toMatch(/failed: HTTP 403$/);
    const other = (await client.complete(params).catch((e) => e)).message as string;
    const shown = /failed: HTTP 404: (.*)$/.exec(other)![1];
    expect(shown).toBe(`]0;title ${'line '.repeat(13)}line…`);
    expect([...shown].length).toBeLessThanOrEqual(80);
  });

  it('follows no redirect when told not to: the redirect is the answer, its target is never asked', async () => {
    let asked = 0;
    const target = await endpoint(() => void asked++);
    const targetServer = server!;
    const hop = createServer((_req, res) => res.writeHead(308, { location: `${target}/v1/completions` }).end());
    await new Promise<void>((r) => hop.listen(0, '127.0.0.1', r));
    try {
      const client = new CompletionClient({ endpoint: `http://127.0.0.1:${(hop.address() as AddressInfo).port}`, followRedirects: false });
      const err = await client.complete(params).catch((e) => e);
      expect(err).toBeInstanceOf(EndpointError);
      expect([err.definitive, err.status]).toEqual([true, 308]);
      expect(asked).toBe(0);
    } finally {
      hop.closeAllConnections();
      await new Promise((r) => hop.close(r));
      server = targetServer;
    }
  });

  it('times out a silent server and retries network errors', async () => {
    const url = await endpoint(() => undefined); // never answers
    const client = new CompletionClient({ endpoint: url, timeoutMs: 50, maxAttempts: 2, backoffMs: 1 });
    await expect(client.complete(params)).rejects.toThrow(/failed after 2 attempt\(s\); last: timed out after 50 ms/);
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r())); // nothing listens there now
    const refused = new CompletionClient({ endpoint: `http://127.0.0.1:${port}`, maxAttempts: 2, backoffMs: 1 });
    await expect(refused.complete(params)).rejects.toThrow(/failed after 2 attempt\(s\); last: fetch failed: ECONNREFUSED/);
  });

  it('speaks the chat API', async () => {
    const url = await endpoint((_c, req, body, res) => {
      expect(req.url).toBe('/v1/chat/completions');
      expect(body.messages).toEqual([{ role: 'user', content: '1+1=' }]);
      ok(res, { choices: [{ index: 0, message: { role: 'assistant', content: '\\boxed{2}' }, finish_reason: 'stop' }] });
    });
    expect(await new CompletionClient({ endpoint: url, chat: true }).complete({ ...params, n: 1 })).toEqual([
      { text: '\\boxed{2}', finishReason: 'stop' },
    ]);
  });
});
