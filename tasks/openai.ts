/**
 * A small client for OpenAI-compatible completion endpoints (vLLM, llama.cpp, OpenAI itself, or
 * `t1 serve`): /v1/completions, or /v1/chat/completions with the prompt as one user message.
 * Retries 429, 5xx, timeouts and network errors with exponential backoff (honouring Retry-After);
 * other HTTP errors fail at once. No error message ever contains the API key, and none carries more
 * of a reply than a short sanitized excerpt (none at all for 401/403): an endpoint's reply must not
 * travel into a campaign's history through a failure.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';

export class EndpointError extends Error {
  override name = 'EndpointError';
  constructor(
    message: string,
    /** The endpoint answered, and retrying the same request cannot help (4xx other than 429, a body that is not an answer). */
    readonly definitive = false,
    /** HTTP status of a definitive answer. */
    readonly status?: number,
  ) {
    super(message);
  }
}

export interface ClientOptions {
  /** Base URL: `http://host:8000`, `http://host:8000/v1`, or a full `.../completions` URL. */
  endpoint: string;
  /** Bearer token; defaults to env T1_OPENAI_API_KEY. */
  apiKey?: string;
  /** Use /v1/chat/completions instead of /v1/completions. */
  chat?: boolean;
  /** Per attempt, the whole response body included. Default 120 s. */
  timeoutMs?: number;
  /** Attempts in all, the first included. Default 5. */
  maxAttempts?: number;
  /** Delay before the first retry; doubles each time, capped at 30 s. Default 1 s. */
  backoffMs?: number;
  /** Follow HTTP redirects (default true); false: a redirect is a definitive error, its target never asked. */
  followRedirects?: boolean;
}

export interface CompletionParams {
  model: string;
  prompt: string;
  maxTokens: number;
  temperature: number;
  n: number;
  seed?: number;
}

export interface Choice {
  text: string;
  /** 'stop', 'length', ... as the server reports it. */
  finishReason: string | null;
}

const MAX_DELAY_MS = 30_000;

const CompletionResponseSchema = z.object({
  choices: z.array(z.object({ index: z.number().int().default(0), text: z.string(), finish_reason: z.string().nullish() })),
});
const ChatResponseSchema = z.object({
  choices: z.array(
    z.object({
      index: z.number().int().default(0),
      message: z.object({ content: z.string().nullable() }),
      finish_reason: z.string().nullish(),
    }),
  ),
});

/** The completions URL for an endpoint given as a base URL, a /v1 URL or the full URL. */
export function completionsUrl(endpoint: string, chat = false): string {
  const base = endpoint.replace(/\/+$/, '');
  if (/\/completions$/.test(base)) return base;
  return `${/\/v1$/.test(base) ? base : `${base}/v1`}${chat ? '/chat/completions' : '/completions'}`;
}

export class CompletionClient {
  readonly url: string;
  private readonly apiKey: string | undefined;
  private readonly opts: Required<Omit<ClientOptions, 'apiKey' | 'endpoint'>>;

  constructor(opts: ClientOptions) {
    this.url = completionsUrl(opts.endpoint, opts.chat);
    new URL(this.url); // fail early on a malformed endpoint
    this.apiKey = opts.apiKey ?? (process.env.T1_OPENAI_API_KEY || undefined);
    this.opts = {
      chat: opts.chat ?? false,
      timeoutMs: opts.timeoutMs ?? 120_000,
      maxAttempts: opts.maxAttempts ?? 5,
      backoffMs: opts.backoffMs ?? 1000,
      followRedirects: opts.followRedirects ?? true,
    };
  }

  /** n choices for one prompt, in index order. */
  async complete(p: CompletionParams): Promise<Choice[]> {
    const body = JSON.stringify({
      model: p.model,
      ...(this.opts.chat ? { messages: [{ role: 'user', content: p.prompt }] } : { prompt: p.prompt }),
      max_tokens: p.maxTokens,
      temperature: p.temperature,
      n: p.n,
      ...(p.seed === undefined ? {} : { seed: p.seed }),
    });
    const json = await this.post(body);
    const choices = this.opts.chat
      ? this.parse(ChatResponseSchema, json).choices.map((c) => ({
          index: c.index,
          text: c.message.content ?? '',
          finishReason: c.finish_reason ?? null,
        }))
      : this.parse(CompletionResponseSchema, json).choices.map((c) => ({
          index: c.index,
          text: c.text,
          finishReason: c.finish_reason ?? null,
        }));
    if (choices.length !== p.n) throw new EndpointError(`${this.where()} returned ${choices.length} choice(s), asked for ${p.n}`, true);
    return choices.sort((a, b) => a.index - b.index).map(({ text, finishReason }) => ({ text, finishReason }));
  }

  private async post(body: string): Promise<unknown> {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (this.apiKey) headers.authorization = `Bearer ${this.apiKey}`;
    let last = '';
    for (let attempt = 1; attempt <= this.opts.maxAttempts; attempt++) {
      const abort = new AbortController();
      const timer = setTimeout(() => abort.abort(), this.opts.timeoutMs);
      let retryAfterMs: number | undefined;
      try {
        const res = await fetch(this.url, {
          method: 'POST',
          headers,
          body,
          signal: abort.signal,
          redirect: this.opts.followRedirects ? 'follow' : 'manual',
        });
        const text = await res.text();
        if (res.ok) {
          try {
            return JSON.parse(text);
          } catch {
            throw new EndpointError(`${this.where()} answered HTTP ${res.status} with non-JSON: ${this.excerpt(text)}`, true);
          }
        }
        // A refusal's body is never shown: it may echo the credentials it refused.
        last = res.status === 401 || res.status === 403 ? `HTTP ${res.status}` : `HTTP ${res.status}: ${this.excerpt(text)}`;
        if (res.status !== 429 && res.status < 500) throw new EndpointError(`${this.where()} failed: ${last}`, true, res.status);
        const ra = Number(res.headers.get('retry-after'));
        if (ra > 0) retryAfterMs = ra * 1000;
      } catch (e) {
        if (e instanceof EndpointError) throw e;
        last = abort.signal.aborted ? `timed out after ${this.opts.timeoutMs} ms` : networkError(e);
      } finally {
        clearTimeout(timer);
      }
      if (attempt < this.opts.maxAttempts) await sleep(Math.min(retryAfterMs ?? this.opts.backoffMs * 2 ** (attempt - 1), MAX_DELAY_MS));
    }
    throw new EndpointError(this.redact(`${this.where()} failed after ${this.opts.maxAttempts} attempt(s); last: ${last}`));
  }

  private parse<T>(schema: z.ZodType<T>, json: unknown): T {
    const r = schema.safeParse(json);
    if (r.success) return r.data;
    const issue = r.error.issues[0];
    throw new EndpointError(
      `${this.where()} returned an unexpected body (${issue.path.join('.') || '(root)'}: ${issue.message}): ${this.excerpt(JSON.stringify(json))}`,
      true,
    );
  }

  /** The URL without any user:password part: safe to print or record. */
  get shownUrl(): string {
    const u = new URL(this.url);
    u.username = u.password = '';
    return String(u);
  }

  private where(): string {
    return `POST ${this.shownUrl}`;
  }

  private redact(message: string): string {
    return this.apiKey ? message.replaceAll(this.apiKey, '***') : message;
  }

  /** A reply's excerpt fit for an error message: the key redacted before it is cut (a cut key would not match). */
  private excerpt(text: string): string {
    return excerpt(this.redact(text));
  }
}

/** Most characters of a reply an error message shows. */
export const EXCERPT_CHARS = 80;

/** The start of a reply, control characters and runs of white space folded to one space, at most EXCERPT_CHARS characters. */
export function excerpt(text: string): string {
  const t = text.replace(/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\s]+/gu, ' ').trim();
  const chars = [...t];
  return chars.length > EXCERPT_CHARS
    ? `${chars
        .slice(0, EXCERPT_CHARS - 1)
        .join('')
        .trimEnd()}…`
    : t;
}

/** fetch's "fetch failed" hides the cause (ECONNREFUSED, ...): show it. */
function networkError(e: unknown): string {
  const cause = (e as { cause?: { code?: string; message?: string } })?.cause;
  return [e instanceof Error ? e.message : String(e), cause?.code ?? cause?.message].filter(Boolean).join(': ');
}
