/**
 * Serves one of our models behind the OpenAI completions API (POST /v1/completions, GET /v1/models),
 * so the external evaluator, or any OpenAI client, can talk to it. The prompt is wrapped as
 * [BOS] prompt [RESP]; the completion is the decoded response with special tokens shown (the answer
 * cue as `<ANS>`), EOS dropped. Every request samples from its own Prng: its `seed`, else the next
 * seed from the server's Prng, so a server replays exactly given the same request order.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';
import { generate } from '../model/sample';
import { tokenizerOf } from '../model/tokenizer';
import type { Transformer } from '../model/transformer';
import { Prng } from '../util/prng';

export interface ServeOptions {
  model: Transformer;
  /** The model id clients must name. */
  name: string;
  /** 0 picks a free port. */
  port: number;
  host?: string;
  /** Seeds the per-request seeds of requests without one. Default 0. */
  seed?: number;
  /** When set, requests must carry `Authorization: Bearer <apiKey>` (else 401), as vLLM's --api-key. */
  apiKey?: string;
}

export interface ServedModel {
  /** Base URL, e.g. http://127.0.0.1:8000/v1. */
  url: string;
  port: number;
  /** Completion requests answered so far (200s). */
  completions(): number;
  close(): Promise<void>;
}

const MAX_BODY_BYTES = 1 << 20;
const MAX_N = 64;

const CompletionRequest = z.object({
  model: z.string(),
  prompt: z.string(),
  max_tokens: z.number().int().min(1).optional(),
  temperature: z.number().min(0).max(2).default(1),
  top_p: z.number().gt(0).max(1).default(1),
  n: z.number().int().min(1).max(MAX_N).default(1),
  seed: z.number().int().optional(),
  stream: z.literal(false, { error: 'streaming is not supported' }).optional(),
});

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly param: string | null = null,
  ) {
    super(message);
  }
}

export async function serveCheckpoint(o: ServeOptions): Promise<ServedModel> {
  const rng = new Prng(o.seed ?? 0);
  const tokenizer = tokenizerOf(o.model.config);
  // One generation at a time: the backend computes serially anyway, and concurrent KV caches only add memory.
  let tail: Promise<unknown> = Promise.resolve();
  const serially = <T>(f: () => Promise<T>): Promise<T> => {
    const r = tail.then(f);
    tail = r.catch(() => undefined);
    return r;
  };

  const complete = async (body: unknown) => {
    const parsed = CompletionRequest.safeParse(body);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const param = issue.path.join('.') || null;
      throw new HttpError(400, `${param ?? 'body'}: ${issue.message}`, param);
    }
    const req = parsed.data;
    if (req.model !== o.name) throw new HttpError(404, `model "${req.model}" does not exist; this server has "${o.name}"`, 'model');
    let prompt: number[];
    try {
      prompt = tokenizer.encodePrompt(req.prompt);
    } catch (e) {
      throw new HttpError(400, `prompt: ${(e as Error).message}`, 'prompt');
    }
    const C = o.model.config.contextLength;
    if (prompt.length > C)
      throw new HttpError(400, `prompt: ${prompt.length} tokens with its markers; this model's context is ${C}`, 'prompt');
    const seed = req.seed ?? rng.nextU32();
    const samples = await serially(() =>
      generate(
        o.model,
        Array.from({ length: req.n }, () => prompt),
        { maxNewTokens: req.max_tokens ?? C, temperature: req.temperature || 1, greedy: req.temperature === 0, topP: req.top_p },
        new Prng(seed),
      ),
    );
    const completionTokens = samples.reduce((s, x) => s + x.tokens.length, 0);
    return {
      id: `cmpl-${randomUUID()}`,
      object: 'text_completion',
      created: Math.floor(Date.now() / 1000),
      model: o.name,
      choices: samples.map((s, index) => ({
        index,
        text: tokenizer.decode(s.stopped ? s.tokens.slice(0, -1) : s.tokens, 'show'),
        logprobs: null,
        finish_reason: s.stopped ? 'stop' : 'length',
      })),
      usage: { prompt_tokens: prompt.length, completion_tokens: completionTokens, total_tokens: prompt.length * req.n + completionTokens },
    };
  };

  let answered = 0;
  const handle = async (req: IncomingMessage) => {
    if (o.apiKey !== undefined && req.headers.authorization !== `Bearer ${o.apiKey}`)
      throw new HttpError(401, 'invalid or missing API key (Authorization: Bearer ...)');
    const path = new URL(req.url ?? '/', 'http://x').pathname.replace(/\/+$/, '');
    if (path === '/v1/models') {
      if (req.method !== 'GET') throw new HttpError(405, 'use GET');
      return {
        object: 'list',
        data: [{ id: o.name, object: 'model', created: 0, owned_by: 't1', max_model_len: o.model.config.contextLength }],
      };
    }
    if (path === '/v1/completions') {
      if (req.method !== 'POST') throw new HttpError(405, 'use POST');
      const body = await complete(await readJson(req));
      answered++;
      return body;
    }
    throw new HttpError(404, `no route ${req.method} ${path}`);
  };

  const server = createServer((req, res) => {
    handle(req).then(
      (body) => send(res, 200, body),
      (e) =>
        e instanceof HttpError
          ? send(res, e.status, { error: { message: e.message, type: 'invalid_request_error', param: e.param, code: null } })
          : send(res, 500, { error: { message: String((e as Error)?.message ?? e), type: 'server_error', param: null, code: null } }),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host ?? '127.0.0.1', () => resolve());
  });
  const { port, address } = server.address() as AddressInfo;
  const host = address.includes(':') ? `[${address}]` : address;
  return {
    url: `http://${host}:${port}/v1`,
    port,
    completions: () => answered,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((e) => (e ? reject(e) : resolve()));
        server.closeAllConnections();
      }),
  };
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, `body over ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new HttpError(400, 'body: not valid JSON');
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
