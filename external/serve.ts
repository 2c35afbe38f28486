/**
 * Serves one of our models behind the OpenAI API (POST /v1/completions, GET /v1/models, and POST
 * /v1/chat/completions for a model with a chat template), so the external evaluator, or any OpenAI
 * client, can talk to it. A checkpoint of our own model wraps a completion prompt as [BOS] prompt
 * [RESP] and shows special tokens in the text (the answer cue as `<ANS>`); a pretrained model
 * continues the prompt's own tokens, and renders chat messages through its chat template. The end
 * token is dropped. Every request samples from its own Prng: its `seed`, else the next seed from the
 * server's Prng, so a server replays exactly given the same request order.
 *
 * Limits: generations run one at a time, with at most `maxQueue` more requests admitted behind the
 * one generating (the rest get 429 with Retry-After before their body is read); a request's body is
 * capped at 1 MB; a request past `requestTimeoutMs` gets 408 (body not received) or 504 (queued or
 * generating) and its generation stops; a client that goes away is dropped from the queue, or its
 * generation stopped, and nothing is sent to it; `max_tokens` over `maxTokens` gets 400. Beyond
 * loopback the server needs an API key, compared in constant time.
 */
import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';
import type { PretrainedTokenizer } from '../formats/tokenizer';
import type { Llama } from '../model/llama';
import { llamaDecodable } from '../model/llama-decode';
import type { Decodable } from '../model/policy';
import { decodable, generate } from '../model/sample';
import { tokenizerOf } from '../model/tokenizer';
import { Transformer } from '../model/transformer';
import { Prng } from '../util/prng';

/** A pretrained model served with its own tokenizer and chat template. */
export interface PretrainedServing {
  llama: Llama;
  tokenizer: PretrainedTokenizer;
}

export const DEFAULT_MAX_QUEUE = 16;
export const DEFAULT_REQUEST_TIMEOUT_MS = 120_000;
/** The longest timer Node keeps (2^31 - 1 ms, about 24.8 days). */
export const MAX_TIMEOUT_MS = 2 ** 31 - 1;

export interface ServeOptions {
  model: Transformer | PretrainedServing;
  /** The model id clients must name. */
  name: string;
  /** 0 picks a free port. */
  port: number;
  /** Default 127.0.0.1; any host but loopback (127.0.0.0/8, ::1, localhost) needs `apiKey`. */
  host?: string;
  /** Seeds the per-request seeds of requests without one. Default 0. */
  seed?: number;
  /** When set, requests must carry `Authorization: Bearer <apiKey>` (else 401), as vLLM's --api-key. */
  apiKey?: string;
  /** Requests admitted behind the one generating; past that, 429 with Retry-After. Default 16. */
  maxQueue?: number;
  /** A request still unanswered this long after it arrived fails (408 reading its body, else 504) and its generation stops. Default 120 s. */
  requestTimeoutMs?: number;
  /** Largest `max_tokens` a request may ask for (over it: 400), and the default when it asks none. Default the model's context. */
  maxTokens?: number;
}

/** What the server has done with its requests, for tests and logs. */
export interface ServeStats {
  /** Admitted requests not yet generating (reading their body, or waiting their turn). */
  queued: number;
  /** 1 while a generation runs. */
  generating: number;
  /** Generations started so far. */
  generations: number;
  /** Requests refused with 429 so far. */
  rejected: number;
  /** Requests whose client went away before their answer: dropped from the queue, or their generation stopped. */
  cancelled: number;
  /** Requests that ran past requestTimeoutMs. */
  timedOut: number;
}

export interface ServedModel {
  /** Base URL, e.g. http://127.0.0.1:8000/v1. */
  url: string;
  port: number;
  /** Completion requests answered so far (200s). */
  completions(): number;
  stats(): ServeStats;
  close(): Promise<void>;
}

/** What the server needs of a model, whichever family it is. */
interface Servable {
  contextLength: number;
  generator: Decodable;
  /** Completion prompt text -> token ids. */
  encodePrompt(text: string): number[];
  /** Chat messages -> prompt ids through the model's chat template; absent without one. */
  encodeChat?(messages: { role: 'system' | 'user' | 'assistant'; content: string }[]): number[];
  /** Generated ids (end token removed) -> text. */
  decode(ids: number[]): string;
}

function servable(m: Transformer | PretrainedServing): Servable {
  if (m instanceof Transformer) {
    const tokenizer = tokenizerOf(m.config);
    return {
      contextLength: m.config.contextLength,
      generator: decodable(m),
      encodePrompt: (text) => tokenizer.encodePrompt(text),
      decode: (ids) => tokenizer.decode(ids, 'show'),
    };
  }
  const { llama, tokenizer } = m;
  return {
    contextLength: llama.config.contextLength,
    generator: llamaDecodable(llama, tokenizer.eosId),
    encodePrompt: (text) => tokenizer.encode(text),
    ...(tokenizer.chatTemplate
      ? { encodeChat: (messages) => tokenizer.encode(tokenizer.renderChat(messages, { addGenerationPrompt: true })) }
      : {}),
    decode: (ids) => tokenizer.decode(ids),
  };
}

/** Why serving on `host` is refused (beyond loopback without an API key), else undefined; one line naming the flags to fix it. */
export function exposureError(host: string, hasApiKey: boolean): string | undefined {
  if (hasApiKey || isLoopback(host)) return undefined;
  return `--host ${host}: serving beyond loopback (127.0.0.1, ::1, localhost) needs an API key; set one with --api-key-env VAR`;
}

function isLoopback(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[(.*)\]$/, '$1');
  return h === 'localhost' || h === '::1' || /^127(\.\d{1,3}){3}$/.test(h) || /^::ffff:127(\.\d{1,3}){3}$/.test(h);
}

const MAX_BODY_BYTES = 1 << 20;
const MAX_N = 64;

const Sampling = {
  model: z.string(),
  max_tokens: z.number().int().min(1).optional(),
  temperature: z.number().min(0).max(2).default(1),
  top_p: z.number().gt(0).max(1).default(1),
  n: z.number().int().min(1).max(MAX_N).default(1),
  seed: z.number().int().optional(),
  stream: z.literal(false, { error: 'streaming is not supported' }).optional(),
};
const CompletionRequest = z.object({ ...Sampling, prompt: z.string() });
const ChatRequest = z.object({
  ...Sampling,
  messages: z.array(z.object({ role: z.enum(['system', 'user', 'assistant']), content: z.string() })).min(1),
});

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly param: string | null = null,
    readonly extra: { type?: string; code?: string; headers?: Record<string, string> } = {},
  ) {
    super(message);
  }
}

/** Why a request was stopped: the abort reason of its signal. */
class Stopped extends Error {
  constructor(readonly why: 'timeout' | 'gone') {
    super(why === 'timeout' ? 'request timed out' : 'client went away');
    this.name = 'AbortError';
  }
}

/** One request's lifetime: its signal (aborted on timeout or disconnect) and where it is. */
interface Ticket {
  signal: AbortSignal;
  phase: 'reading' | 'queued' | 'generating';
  /** Aborts the signal with a timeout once the deadline is past; for checks while the loop is held. */
  checkDeadline(): void;
}

const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest();

export async function serveCheckpoint(o: ServeOptions): Promise<ServedModel> {
  const bindHost = o.host ?? '127.0.0.1';
  if (o.apiKey === '') throw new Error('apiKey: empty');
  const exposed = exposureError(bindHost, o.apiKey !== undefined);
  if (exposed) throw new Error(exposed);
  const maxQueue = o.maxQueue ?? DEFAULT_MAX_QUEUE;
  if (!Number.isInteger(maxQueue) || maxQueue < 0) throw new Error(`maxQueue: expected an integer >= 0, got ${maxQueue}`);
  const timeoutMs = o.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  if (!(timeoutMs > 0 && timeoutMs <= MAX_TIMEOUT_MS))
    throw new Error(`requestTimeoutMs: expected a number in (0, ${MAX_TIMEOUT_MS}], got ${timeoutMs}`);
  const rng = new Prng(o.seed ?? 0);
  const model = servable(o.model);
  const C = model.contextLength;
  const maxTokens = o.maxTokens ?? C;
  if (!(maxTokens >= 1)) throw new Error(`maxTokens: expected a number >= 1, got ${maxTokens}`);
  // Compared as digests: equal lengths for timingSafeEqual, and no early exit on the first differing byte.
  const keyDigest = o.apiKey === undefined ? undefined : sha256(`Bearer ${o.apiKey}`);
  const authorized = (header: string | undefined) => !keyDigest || timingSafeEqual(sha256(header ?? ''), keyDigest);

  const stats: ServeStats = { queued: 0, generating: 0, generations: 0, rejected: 0, cancelled: 0, timedOut: 0 };
  // One generation at a time: the backend computes serially anyway, and concurrent KV caches only add memory.
  // `admitted` counts requests holding a place (reading their body, waiting, or generating): at most maxQueue + 1.
  let admitted = 0;
  /** Mean wall time of recent generations (ms), for Retry-After. */
  let meanMs = 0;
  const waiting: { ticket: Ticket; start: () => void }[] = [];
  let starting = false;
  /** Starts the next waiting request once the event loop has turned (so disconnects in the queue are seen first). */
  const pump = () => {
    if (stats.generating || starting || !waiting.length) return;
    starting = true;
    setImmediate(() => {
      starting = false;
      if (stats.generating) return;
      // A request already past its deadline times out waiting (its abort handler drops it from the queue).
      for (const w of [...waiting]) w.ticket.checkDeadline();
      const next = waiting.shift();
      if (!next) return;
      stats.generating = 1;
      next.start();
    });
  };
  /** Resolves when it is the ticket's turn to generate (and it then holds the model until `finish`); rejects if it is aborted first. */
  const turn = (t: Ticket) =>
    new Promise<void>((resolve, reject) => {
      t.signal.throwIfAborted();
      const onAbort = () => {
        const i = waiting.indexOf(entry);
        if (i >= 0) waiting.splice(i, 1);
        reject(t.signal.reason);
      };
      const entry = {
        ticket: t,
        start: () => {
          t.signal.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      t.signal.addEventListener('abort', onAbort, { once: true });
      waiting.push(entry);
      pump();
    });
  const finish = () => {
    stats.generating = 0;
    pump();
  };

  function parse<T extends z.ZodType>(schema: T, body: unknown): z.infer<T> {
    const parsed = schema.safeParse(body);
    if (parsed.success) return parsed.data;
    const issue = parsed.error.issues[0];
    const param = issue.path.join('.') || null;
    throw new HttpError(400, `${param ?? 'body'}: ${issue.message}`, param);
  }

  /** Samples n continuations of the prompt as the request asks: their texts, finish reasons and token counts. */
  const run = async (req: z.infer<typeof CompletionRequest> | z.infer<typeof ChatRequest>, encode: () => number[], ticket: Ticket) => {
    if (req.model !== o.name) throw new HttpError(404, `model "${req.model}" does not exist; this server has "${o.name}"`, 'model');
    if (req.max_tokens !== undefined && req.max_tokens > maxTokens)
      throw new HttpError(400, `max_tokens: ${req.max_tokens} is over this server's limit of ${maxTokens}`, 'max_tokens');
    let prompt: number[];
    try {
      prompt = encode();
    } catch (e) {
      throw new HttpError(400, `prompt: ${(e as Error).message}`, 'prompt');
    }
    if (prompt.length > C)
      throw new HttpError(400, `prompt: ${prompt.length} tokens with its markers; this model's context is ${C}`, 'prompt');
    const seed = req.seed ?? rng.nextU32();
    ticket.phase = 'queued';
    await turn(ticket);
    ticket.phase = 'generating';
    stats.queued--;
    stats.generations++;
    const t0 = performance.now();
    let samples;
    try {
      ticket.checkDeadline();
      ticket.signal.throwIfAborted();
      samples = await generate(
        model.generator,
        Array.from({ length: req.n }, () => prompt),
        {
          maxNewTokens: req.max_tokens ?? maxTokens,
          temperature: req.temperature || 1,
          greedy: req.temperature === 0,
          topP: req.top_p,
          signal: ticket.signal, // aborted on timeout or disconnect: the generation stops at its next token
        },
        new Prng(seed),
      );
      const ms = performance.now() - t0;
      meanMs = meanMs === 0 ? ms : 0.8 * meanMs + 0.2 * ms;
    } finally {
      finish();
    }
    ticket.signal.throwIfAborted();
    const completionTokens = samples.reduce((s, x) => s + x.tokens.length, 0);
    return {
      choices: samples.map((s) => ({
        text: model.decode(s.stopped ? s.tokens.slice(0, -1) : s.tokens),
        finish_reason: s.stopped ? 'stop' : 'length',
      })),
      usage: { prompt_tokens: prompt.length, completion_tokens: completionTokens, total_tokens: prompt.length * req.n + completionTokens },
    };
  };

  const complete = async (body: unknown, ticket: Ticket) => {
    const req = parse(CompletionRequest, body);
    const { choices, usage } = await run(req, () => model.encodePrompt(req.prompt), ticket);
    return {
      id: `cmpl-${randomUUID()}`,
      object: 'text_completion',
      created: Math.floor(Date.now() / 1000),
      model: o.name,
      choices: choices.map((c, index) => ({ index, text: c.text, logprobs: null, finish_reason: c.finish_reason })),
      usage,
    };
  };

  const chat = async (body: unknown, ticket: Ticket) => {
    const encodeChat = model.encodeChat;
    if (!encodeChat) throw new HttpError(404, `model "${o.name}" has no chat template; use /v1/completions`);
    const req = parse(ChatRequest, body);
    const { choices, usage } = await run(req, () => encodeChat(req.messages), ticket);
    return {
      id: `chatcmpl-${randomUUID()}`,
      object: 'chat.completion',
      created: Math.floor(Date.now() / 1000),
      model: o.name,
      choices: choices.map((c, index) => ({ index, message: { role: 'assistant', content: c.text }, finish_reason: c.finish_reason })),
      usage,
    };
  };

  /** The answer's body, and whether it is a completion (counted when sent). */
  const handle = async (req: IncomingMessage, ticket: Ticket): Promise<{ body: unknown; completion: boolean }> => {
    if (!authorized(req.headers.authorization)) throw new HttpError(401, 'invalid or missing API key (Authorization: Bearer ...)');
    const path = new URL(req.url ?? '/', 'http://x').pathname.replace(/\/+$/, '');
    if (path === '/v1/models') {
      if (req.method !== 'GET') throw new HttpError(405, 'use GET');
      return {
        body: { object: 'list', data: [{ id: o.name, object: 'model', created: 0, owned_by: 't1', max_model_len: C }] },
        completion: false,
      };
    }
    if (path === '/v1/completions' || path === '/v1/chat/completions') {
      if (req.method !== 'POST') throw new HttpError(405, 'use POST');
      if (admitted > maxQueue) {
        stats.rejected++;
        const retryAfter = Math.max(1, Math.ceil((admitted * (meanMs || 1000)) / 1000));
        throw new HttpError(429, `server busy: ${admitted} requests ahead (at most ${maxQueue} wait); retry after ${retryAfter} s`, null, {
          type: 'rate_limit_error',
          code: 'rate_limit_exceeded',
          headers: { 'retry-after': String(retryAfter) },
        });
      }
      admitted++;
      stats.queued++;
      try {
        const json = await readJson(req, ticket.signal);
        return { body: await (path === '/v1/completions' ? complete : chat)(json, ticket), completion: true };
      } finally {
        admitted--;
        if (ticket.phase !== 'generating') stats.queued--;
      }
    }
    throw new HttpError(404, `no route ${req.method} ${path}`);
  };

  let answered = 0;
  const server = createServer((req, res) => {
    const ac = new AbortController();
    const deadline = Date.now() + timeoutMs;
    const timeout = () => {
      if (!ac.signal.aborted) ac.abort(new Stopped('timeout'));
    };
    const timer = setTimeout(timeout, timeoutMs);
    const ticket: Ticket = {
      signal: ac.signal,
      phase: 'reading',
      checkDeadline: () => {
        if (Date.now() >= deadline) timeout();
      },
    };
    res.on('close', () => {
      clearTimeout(timer);
      if (!res.writableFinished && !ac.signal.aborted) ac.abort(new Stopped('gone'));
    });
    const gone = () => (ac.signal.aborted && (ac.signal.reason as Stopped).why === 'gone') || res.destroyed || req.socket.destroyed;
    handle(req, ticket).then(
      ({ body, completion }) => {
        if (gone()) return void (completion && stats.cancelled++);
        send(res, 200, body);
        if (completion) answered++;
      },
      (e) => {
        if (gone()) return void stats.cancelled++;
        if (e instanceof Stopped && e.why === 'timeout') stats.timedOut++;
        if (e instanceof Stopped && e.why === 'timeout') {
          const s = timeoutMs / 1000;
          e =
            ticket.phase === 'reading'
              ? new HttpError(408, `request body not received within ${s} s`, null, { type: 'timeout', headers: { connection: 'close' } })
              : new HttpError(
                  504,
                  `request timed out after ${s} s ${ticket.phase === 'queued' ? 'waiting its turn' : 'generating'}`,
                  null,
                  {
                    type: 'timeout',
                  },
                );
        }
        if (e instanceof HttpError)
          send(
            res,
            e.status,
            { error: { message: e.message, type: e.extra.type ?? 'invalid_request_error', param: e.param, code: e.extra.code ?? null } },
            e.extra.headers,
          );
        else send(res, 500, { error: { message: String((e as Error)?.message ?? e), type: 'server_error', param: null, code: null } });
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, bindHost, () => resolve());
  });
  const { port, address } = server.address() as AddressInfo;
  const host = address.includes(':') ? `[${address}]` : address;
  return {
    url: `http://${host}:${port}/v1`,
    port,
    completions: () => answered,
    stats: () => ({ ...stats }),
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((e) => (e ? reject(e) : resolve()));
        server.closeAllConnections();
      }),
  };
}

/** The request's JSON body, read up to MAX_BODY_BYTES; rejects with the signal's reason once it aborts. */
function readJson(req: IncomingMessage, signal: AbortSignal): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const stop = (e: unknown) => {
      cleanup();
      chunks.length = 0;
      reject(e);
    };
    const onAbort = () => stop(signal.reason);
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) stop(new HttpError(413, `body over ${MAX_BODY_BYTES} bytes`, null, { headers: { connection: 'close' } }));
      else chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      } catch {
        reject(new HttpError(400, 'body: not valid JSON'));
      }
    };
    const onError = (e: Error) => stop(e);
    const cleanup = () => {
      req.off('data', onData).off('end', onEnd).off('error', onError);
      signal.removeEventListener('abort', onAbort);
    };
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    req.on('data', onData).on('end', onEnd).on('error', onError);
  });
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}
