/**
 * Serves one of our models behind the OpenAI API (POST /v1/completions, GET /v1/models, and POST
 * /v1/chat/completions for a model with a chat template), so the external evaluator, or any OpenAI
 * client, can talk to it. A checkpoint of our own model wraps a completion prompt as [BOS] prompt
 * [RESP] and shows special tokens in the text (the answer cue as `<ANS>`); a pretrained model
 * continues the prompt's own tokens, and renders chat messages through its chat template. The end
 * token is dropped. Every request samples from its own Prng: its `seed`, else the next seed from the
 * server's Prng, so a server replays exactly given the same request order.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';
import type { PretrainedTokenizer } from '../formats/tokenizer';
import type { Llama } from '../model/llama';
import { llamaDecodable } from '../model/llama-decode';
import { generate, type Decodable } from '../model/sample';
import { tokenizerOf } from '../model/tokenizer';
import { Transformer } from '../model/transformer';
import { Prng } from '../util/prng';

/** A pretrained model served with its own tokenizer and chat template. */
export interface PretrainedServing {
  llama: Llama;
  tokenizer: PretrainedTokenizer;
}

export interface ServeOptions {
  model: Transformer | PretrainedServing;
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

/** What the server needs of a model, whichever family it is. */
interface Servable {
  contextLength: number;
  generator: Transformer | Decodable;
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
      generator: m,
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
  ) {
    super(message);
  }
}

export async function serveCheckpoint(o: ServeOptions): Promise<ServedModel> {
  const rng = new Prng(o.seed ?? 0);
  const model = servable(o.model);
  const C = model.contextLength;
  // One generation at a time: the backend computes serially anyway, and concurrent KV caches only add memory.
  let tail: Promise<unknown> = Promise.resolve();
  const serially = <T>(f: () => Promise<T>): Promise<T> => {
    const r = tail.then(f);
    tail = r.catch(() => undefined);
    return r;
  };

  function parse<T extends z.ZodType>(schema: T, body: unknown): z.infer<T> {
    const parsed = schema.safeParse(body);
    if (parsed.success) return parsed.data;
    const issue = parsed.error.issues[0];
    const param = issue.path.join('.') || null;
    throw new HttpError(400, `${param ?? 'body'}: ${issue.message}`, param);
  }

  /** Samples n continuations of the prompt as the request asks: their texts, finish reasons and token counts. */
  const run = async (req: z.infer<typeof CompletionRequest> | z.infer<typeof ChatRequest>, encode: () => number[]) => {
    if (req.model !== o.name) throw new HttpError(404, `model "${req.model}" does not exist; this server has "${o.name}"`, 'model');
    let prompt: number[];
    try {
      prompt = encode();
    } catch (e) {
      throw new HttpError(400, `prompt: ${(e as Error).message}`, 'prompt');
    }
    if (prompt.length > C)
      throw new HttpError(400, `prompt: ${prompt.length} tokens with its markers; this model's context is ${C}`, 'prompt');
    const seed = req.seed ?? rng.nextU32();
    const samples = await serially(() =>
      generate(
        model.generator,
        Array.from({ length: req.n }, () => prompt),
        { maxNewTokens: req.max_tokens ?? C, temperature: req.temperature || 1, greedy: req.temperature === 0, topP: req.top_p },
        new Prng(seed),
      ),
    );
    const completionTokens = samples.reduce((s, x) => s + x.tokens.length, 0);
    return {
      choices: samples.map((s) => ({
        text: model.decode(s.stopped ? s.tokens.slice(0, -1) : s.tokens),
        finish_reason: s.stopped ? 'stop' : 'length',
      })),
      usage: { prompt_tokens: prompt.length, completion_tokens: completionTokens, total_tokens: prompt.length * req.n + completionTokens },
    };
  };

  const complete = async (body: unknown) => {
    const req = parse(CompletionRequest, body);
    const { choices, usage } = await run(req, () => model.encodePrompt(req.prompt));
    return {
      id: `cmpl-${randomUUID()}`,
      object: 'text_completion',
      created: Math.floor(Date.now() / 1000),
      model: o.name,
      choices: choices.map((c, index) => ({ index, text: c.text, logprobs: null, finish_reason: c.finish_reason })),
      usage,
    };
  };

  const chat = async (body: unknown) => {
    const encodeChat = model.encodeChat;
    if (!encodeChat) throw new HttpError(404, `model "${o.name}" has no chat template; use /v1/completions`);
    const req = parse(ChatRequest, body);
    const { choices, usage } = await run(req, () => encodeChat(req.messages));
    return {
      id: `chatcmpl-${randomUUID()}`,
      object: 'chat.completion',
      created: Math.floor(Date.now() / 1000),
      model: o.name,
      choices: choices.map((c, index) => ({ index, message: { role: 'assistant', content: c.text }, finish_reason: c.finish_reason })),
      usage,
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
        data: [{ id: o.name, object: 'model', created: 0, owned_by: 't1', max_model_len: C }],
      };
    }
    if (path === '/v1/completions' || path === '/v1/chat/completions') {
      if (req.method !== 'POST') throw new HttpError(405, 'use POST');
      const body = await (path === '/v1/completions' ? complete : chat)(await readJson(req));
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
