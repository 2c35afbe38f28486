/**
 * Temporal's remote codec protocol over HTTP (what the web UI and `temporal --codec-endpoint` call):
 * POST …/decode and …/encode with `{ payloads: [{ metadata: { k: base64 }, data: base64 }] }`,
 * answered in kind. Every request needs the token, as `Authorization: Bearer TOKEN` or as the path
 * segment before the operation (`/TOKEN/decode`): the UI of a dev server without login sends no
 * Authorization header, so it is pointed at an endpoint that carries the token. Browsers may call
 * it only from the UI's origin (CORS).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { z } from 'zod';

export interface CodecServerOptions {
  codec: PayloadCodec;
  token: string;
  /** Origins whose pages may call it (the Temporal UI's, e.g. http://127.0.0.1:8233). */
  uiOrigins: string[];
  host?: string;
  /** 0: any free port. */
  port?: number;
  /** Told of refused and failed requests (never their payloads or token). */
  log?: (line: string) => void;
}

export interface CodecServer {
  /** Base URL, without the token. */
  url: string;
  port: number;
  close(): Promise<void>;
}

/** Temporal limits one request's payloads to a few MB; the UI batches a page of events. */
const MAX_BODY_BYTES = 16 * 1024 * 1024;
const ALLOWED_HEADERS = 'Content-Type, X-Namespace, Authorization';

const base64 = z.string().regex(/^[A-Za-z0-9+/_-]*={0,2}$/, 'expected base64');
const BodySchema = z.object({
  payloads: z.array(z.object({ metadata: z.record(z.string(), base64).nullish(), data: base64.nullish() })),
});

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** Equal length digests, so the comparison's time says nothing about the token. */
function sameSecret(given: string, token: string): boolean {
  const h = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(h(given), h(token));
}

const fromJson = (p: z.infer<typeof BodySchema>['payloads'][number]): Payload => ({
  metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64')])),
  data: Buffer.from(p.data ?? '', 'base64'),
});
const toJson = (p: Payload) => ({
  metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
  data: Buffer.from(p.data ?? new Uint8Array()).toString('base64'),
});

async function readBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, `request body over ${MAX_BODY_BYTES} bytes`);
    chunks.push(c);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new HttpError(400, 'expected a JSON body');
  }
}

export async function startCodecServer(o: CodecServerOptions): Promise<CodecServer> {
  const log = o.log ?? (() => {});
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const origin = req.headers.origin;
    const corsOk = origin !== undefined && o.uiOrigins.includes(origin);
    if (corsOk) {
      res.setHeader('Access-Control-Allow-Origin', origin);
      res.setHeader('Vary', 'Origin');
    }
    if (req.method === 'OPTIONS') {
      // A preflight carries no credentials: it only says which pages may send the real request.
      if (!corsOk) return void res.writeHead(403).end();
      res.setHeader('Access-Control-Allow-Methods', 'POST, OPTIONS');
      res.setHeader('Access-Control-Allow-Headers', ALLOWED_HEADERS);
      res.setHeader('Access-Control-Max-Age', '600');
      // Chromium asks before a page on a public address calls a loopback or private one.
      if (req.headers['access-control-request-private-network'] === 'true') res.setHeader('Access-Control-Allow-Private-Network', 'true');
      return void res.writeHead(204).end();
    }
    const segments = new URL(req.url ?? '/', 'http://codec').pathname.split('/').filter(Boolean);
    const op = segments.at(-1);
    if ((op !== 'decode' && op !== 'encode') || segments.length > 2) throw new HttpError(404, 'expected POST /decode or /encode');
    if (req.method !== 'POST') throw new HttpError(405, 'expected POST');
    const bearer = /^Bearer (.+)$/i.exec(req.headers.authorization ?? '')?.[1];
    const given = segments.length === 2 ? segments[0] : bearer;
    if (given === undefined || !sameSecret(given, o.token)) {
      res.setHeader('WWW-Authenticate', 'Bearer');
      throw new HttpError(401, 'a valid token is required (Authorization: Bearer TOKEN, or the endpoint …/TOKEN)');
    }
    const body = BodySchema.safeParse(await readBody(req));
    if (!body.success)
      throw new HttpError(400, `expected {"payloads": [{"metadata": {…}, "data": "base64"}]}: ${body.error.issues[0]?.message}`);
    const input = body.data.payloads.map(fromJson);
    let output: Payload[];
    try {
      output = op === 'decode' ? await o.codec.decode(input) : await o.codec.encode(input);
    } catch (e) {
      throw new HttpError(422, (e as Error).message); // the codec's messages name key ids, never keys
    }
    res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ payloads: output.map(toJson) }));
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((e) => {
      const status = e instanceof HttpError ? e.status : 500;
      const message = e instanceof HttpError ? e.message : 'internal error';
      log(`${req.method} ${status}: ${message}${status === 500 ? ` (${(e as Error).message})` : ''}`);
      req.resume(); // drain an unread body so the connection can be reused
      if (!res.headersSent) res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ error: message }));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: o.host ?? '127.0.0.1', port: o.port ?? 0 }, resolve);
  });
  const { address, port } = server.address() as AddressInfo;
  const host = address.includes(':') ? `[${address}]` : address;
  return {
    url: `http://${host}:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
