/**
 * Model URIs -> local paths pinned by content hash. hf:// runs against a loopback server that speaks the
 * part of the Hugging Face Hub API @huggingface/hub uses (the tree listing and resolve/ downloads);
 * s3:// against a loopback server that speaks the S3 calls we make (HeadObject, ListObjectsV2, GetObject).
 */
import { createHash } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { exportGguf } from '../../../formats/export';
import { loadPretrained, openPretrained } from '../../../formats/pretrained';
import { contentHash, ModelFetchError, ModelSourceError, parseModelUri, resolveModel } from '../../../formats/source';
import { makeS3Client } from '../../../storage/s3';
import { UserError } from '../../../util/errors';

const ROOT = join(import.meta.dirname, '../../..');
const TIED = join(ROOT, 'tests/fixtures/pretrained/llama-tied');
const SHARDED = join(ROOT, 'tests/fixtures/pretrained/llama3-untied');
const TIED_MODEL_FILES = [
  'chat_template.jinja',
  'config.json',
  'generation_config.json',
  'model.safetensors',
  'tokenizer.json',
  'tokenizer_config.json',
];
const TOKEN = 'hf_TestToken1234567890secret';

let tmp: string;
let gguf: Buffer;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 't1-source-'));
  const m = loadPretrained(TIED);
  exportGguf({ config: m.config, weights: m.weights, tokenizer: m.tokenizer, name: 'tiny' }, join(tmp, 'tiny-f16.gguf'), 'f16');
  gguf = readFileSync(join(tmp, 'tiny-f16.gguf'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
const filesOf = (dir: string) => Object.fromEntries(readdirSync(dir).map((f) => [f, readFileSync(join(dir, f))]));
/** The directory hash computed independently: sorted "<name> <sha256>\n" lines. */
const dirHash = (dir: string, names: string[]) =>
  sha256(
    [...names]
      .sort()
      .map((n) => `${n} ${sha256(readFileSync(join(dir, n)))}\n`)
      .join(''),
  );
let cacheN = 0;
const freshCache = () => join(tmp, `cache-${cacheN++}`);
async function failure(p: Promise<unknown>): Promise<Error> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  if (!(e instanceof Error)) throw new Error('expected a rejection');
  return e;
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** A fake remote on a loopback port: subclasses answer requests in `handle`; `stop` drops open connections too. */
abstract class LoopbackServer {
  private server = createServer((req, res) => this.handle(req, res));
  url = '';

  async start(): Promise<void> {
    this.url = await listen(this.server);
  }

  stop(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }

  protected abstract handle(req: IncomingMessage, res: ServerResponse): void;
}

describe('parseModelUri', () => {
  it('reads local paths, hf:// (revision main by default) and s3://', () => {
    expect(parseModelUri('./models/x')).toEqual({ scheme: 'local', path: './models/x', uri: './models/x' });
    expect(parseModelUri('file:///tmp/m.gguf')).toMatchObject({ scheme: 'local', path: '/tmp/m.gguf' });
    expect(parseModelUri('hf://t1/tiny-llama')).toEqual({
      scheme: 'hf',
      repo: 't1/tiny-llama',
      path: '',
      revision: 'main',
      uri: 'hf://t1/tiny-llama@main',
    });
    expect(parseModelUri('hf://org/Name.v2/sub/m.Q4_1.gguf@refs/pr/3')).toMatchObject({
      repo: 'org/Name.v2',
      path: 'sub/m.Q4_1.gguf',
      revision: 'refs/pr/3',
    });
    expect(parseModelUri('s3://my-bucket/models/smol.gguf')).toEqual({
      scheme: 's3',
      bucket: 'my-bucket',
      key: 'models/smol.gguf',
      uri: 's3://my-bucket/models/smol.gguf',
    });
    expect(parseModelUri('s3://my-bucket/models/llama/')).toMatchObject({ key: 'models/llama/' });
    expect(parseModelUri('builtin://smollm2-135m-instruct')).toEqual({
      scheme: 'builtin',
      name: 'smollm2-135m-instruct',
      uri: 'builtin://smollm2-135m-instruct',
    });
  });

  it('refuses bad URIs by name, on one line, as user errors', () => {
    const bad: [string, string][] = [
      ['', 'model URI is empty'],
      ['ftp://host/m.gguf', 'ftp://host/m.gguf: unknown scheme "ftp://" (expected a local path, hf://, s3:// or builtin://)'],
      ['builtin://gpt-5', 'builtin://gpt-5: no builtin model "gpt-5" (builtin: smollm2-135m-instruct)'],
      ['builtin://constructor', 'builtin://constructor: no builtin model "constructor" (builtin: smollm2-135m-instruct)'],
      ['hf://', 'hf://: expected hf://org/name[/path][@revision]'],
      ['hf://org', 'hf://org: expected hf://org/name[/path][@revision]'],
      ['hf://org/name@', 'hf://org/name@: the revision after @ is empty (expected hf://org/name[/path][@revision])'],
      ['hf://org/na me', 'hf://org/na me: "org/na me" is not a Hugging Face repo id (expected hf://org/name[/path][@revision])'],
      ['hf://org/name/../x', 'hf://org/name/../x: the path may not contain . or ..'],
      [
        's3://',
        's3://: "" is not a bucket name (expected s3://bucket/key (a .gguf object, or a prefix holding a Hugging Face model directory))',
      ],
      [
        's3://bucket',
        's3://bucket: no key or prefix after the bucket (expected s3://bucket/key (a .gguf object, or a prefix holding a Hugging Face model directory))',
      ],
      [
        's3://bucket/',
        's3://bucket/: no key or prefix after the bucket (expected s3://bucket/key (a .gguf object, or a prefix holding a Hugging Face model directory))',
      ],
    ];
    for (const [uri, message] of bad) {
      let err: unknown;
      try {
        parseModelUri(uri);
      } catch (e) {
        err = e;
      }
      expect(err, uri).toBeInstanceOf(ModelSourceError);
      expect(err, uri).toBeInstanceOf(UserError);
      expect(String(err)).toBe(`ModelSourceError: ${message}`);
    }
  });

  it('an s3:// URI without an S3 client is refused before anything is fetched', async () => {
    const e = await failure(resolveModel('s3://bucket/models/m.gguf', { cacheDir: freshCache() }));
    expect(e).toBeInstanceOf(ModelSourceError);
    expect(e.message).toBe('s3://bucket/models/m.gguf: an s3:// model needs an S3 client (none was given)');
  });
});

describe('local paths', () => {
  it('returns a file or directory as is, with its content hash', async () => {
    const file = join(tmp, 'tiny-f16.gguf');
    expect(await resolveModel(file)).toEqual({ path: file, sha256: sha256(gguf), uri: file });
    const r = await resolveModel(TIED);
    expect(r.path).toBe(TIED);
    // Only the files the model is made of count: not reference.json / reference-logits.bin.
    expect(r.sha256).toBe(dirHash(TIED, TIED_MODEL_FILES));
    expect(await contentHash(TIED)).toBe(r.sha256);
    expect(await contentHash(TIED)).toBe(r.sha256); // stable
    expect((await resolveModel(`file://${TIED}`)).sha256).toBe(r.sha256);
    // With an index: the index and the shards it names.
    const shards = readdirSync(SHARDED).filter((f) => f.endsWith('.safetensors'));
    expect(shards).toHaveLength(3);
    expect(await contentHash(SHARDED)).toBe(
      dirHash(SHARDED, [
        'chat_template.jinja',
        'config.json',
        'generation_config.json',
        'model.safetensors.index.json',
        'tokenizer.json',
        'tokenizer_config.json',
        ...shards,
      ]),
    );
  });

  it('the hash changes when one byte of one model file changes, and only then', async () => {
    const dir = join(tmp, 'tied-copy');
    cpSync(TIED, dir, { recursive: true });
    const before = await contentHash(dir);
    expect(before).toBe(await contentHash(TIED));
    writeFileSync(join(dir, 'reference.json'), '{}'); // not part of the model
    writeFileSync(join(dir, 'README.md'), '# hi');
    expect(await contentHash(dir)).toBe(before);
    const w = readFileSync(join(dir, 'model.safetensors'));
    w[w.length - 1] ^= 1;
    writeFileSync(join(dir, 'model.safetensors'), w);
    const after = await contentHash(dir);
    expect(after).not.toBe(before);
    w[w.length - 1] ^= 1;
    writeFileSync(join(dir, 'model.safetensors'), w);
    expect(await contentHash(dir)).toBe(before);

    const sharded = join(tmp, 'sharded-copy');
    cpSync(SHARDED, sharded, { recursive: true });
    const s = readFileSync(join(sharded, 'model-00002-of-00003.safetensors'));
    s[200] ^= 0x40;
    writeFileSync(join(sharded, 'model-00002-of-00003.safetensors'), s);
    expect(await contentHash(sharded)).not.toBe(await contentHash(SHARDED));
  });

  it('expectSha256 must match: the error names both hashes', async () => {
    const good = await contentHash(TIED);
    expect((await resolveModel(TIED, { expectSha256: good.toUpperCase() })).sha256).toBe(good);
    const wrong = 'ab'.repeat(32);
    const e = await failure(resolveModel(TIED, { expectSha256: wrong }));
    expect(e).toBeInstanceOf(ModelSourceError);
    expect(e.message).toBe(`${TIED}: content sha256 is ${good}, expected ${wrong}`);
    expect((await failure(resolveModel(TIED, { expectSha256: 'abc' }))).message).toBe(
      `${TIED}: expected sha256 "abc" is not 64 hex digits`,
    );
    const missing = join(tmp, 'nope');
    expect((await failure(resolveModel(missing))).message).toBe(`${missing}: no such file or directory`);
  });
});

// ---------------------------------------------------------------------------------------------
// A loopback Hugging Face Hub

interface HubRequest {
  method: string;
  url: string;
  auth?: string;
  range?: string;
}

class FakeHub extends LoopbackServer {
  readonly requests: HubRequest[] = [];
  /** repo -> revision -> path -> bytes */
  readonly repos = new Map<string, Map<string, Map<string, Buffer>>>();
  /** Faults, by file path: serve half the bytes then drop the connection, or serve one byte flipped. */
  cut = new Set<string>();
  corrupt = new Set<string>();
  /** Repos that answer 403 with the caller's Authorization header echoed in the error body. */
  echoAuth = new Set<string>();

  add(repo: string, revision: string, files: Record<string, Buffer>): void {
    if (!this.repos.has(repo)) this.repos.set(repo, new Map());
    this.repos.get(repo)!.set(revision, new Map(Object.entries(files)));
  }

  protected handle(req: IncomingMessage, res: ServerResponse): void {
    this.requests.push({ method: req.method!, url: req.url!, auth: req.headers.authorization, range: req.headers.range });
    const url = new URL(req.url!, this.url);
    const fail = (status: number, code: string, error: string) => {
      res.writeHead(status, { 'content-type': 'application/json', 'x-error-code': code });
      res.end(JSON.stringify({ error }));
    };
    // GET /api/models/{org}/{name}/tree/{revision}[/{path}]?recursive=..&expand=..
    const tree = /^\/api\/models\/([^/]+\/[^/]+)\/tree\/([^/]+)(?:\/(.*))?$/.exec(url.pathname);
    // GET /{org}/{name}/resolve/{revision}/{path}
    const resolve = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
    const m = tree ?? resolve;
    if (req.method !== 'GET' || !m) return fail(400, 'BadRequest', `unexpected request ${req.method} ${req.url}`);
    const repo = decodeURIComponent(m[1]);
    const revision = decodeURIComponent(m[2]);
    const path = decodeURIComponent(m[3] ?? '');
    if (this.echoAuth.has(repo)) return fail(403, 'GatedRepo', `Access to ${repo} is restricted for ${req.headers.authorization}`);
    const revisions = this.repos.get(repo);
    if (!revisions) return fail(404, 'RepositoryNotFound', 'Repository not found');
    const files = revisions.get(revision);
    if (!files) return fail(404, 'RevisionNotFound', 'Invalid rev id: ' + revision);

    if (tree) {
      const prefix = path ? `${path}/` : '';
      if (path && ![...files.keys()].some((f) => f.startsWith(prefix))) return fail(404, 'EntryNotFound', `${path} does not exist`);
      const entries = new Map<string, object>();
      for (const [f, data] of files) {
        if (!f.startsWith(prefix)) continue;
        const rest = f.slice(prefix.length);
        if (rest.includes('/')) {
          const d = prefix + rest.split('/')[0];
          entries.set(d, { type: 'directory', oid: sha1(d), size: 0, path: d });
        } else if (/\.(safetensors|gguf|bin)$/.test(f)) {
          entries.set(f, {
            type: 'file',
            oid: sha1(`pointer ${f}`),
            size: data.length,
            path: f,
            lfs: { oid: sha256(data), size: data.length, pointerSize: 134 },
          });
        } else {
          entries.set(f, { type: 'file', oid: gitOid(data), size: data.length, path: f });
        }
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      return void res.end(JSON.stringify([...entries.values()]));
    }

    let data = files.get(path);
    if (!data) return fail(404, 'EntryNotFound', `${path} does not exist`);
    if (this.corrupt.has(path)) {
      data = Buffer.from(data);
      data[data.length >> 1] ^= 1;
    }
    const headers = { 'content-type': 'application/octet-stream', etag: `"${sha256(data)}"`, 'accept-ranges': 'bytes' };
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    if (range) {
      const start = Number(range[1]);
      const end = range[2] ? Math.min(Number(range[2]), data.length - 1) : data.length - 1;
      res.writeHead(206, { ...headers, 'content-range': `bytes ${start}-${end}/${data.length}`, 'content-length': end - start + 1 });
      return void res.end(data.subarray(start, end + 1));
    }
    res.writeHead(200, { ...headers, 'content-length': data.length });
    if (this.cut.has(path)) {
      res.write(data.subarray(0, data.length >> 1), () => res.destroy());
      return;
    }
    res.end(data);
  }
}

const sha1 = (s: string) => createHash('sha1').update(s).digest('hex');
const gitOid = (b: Buffer) => createHash('sha1').update(`blob ${b.length}\0`).update(b).digest('hex');

describe('hf:// (loopback hub)', () => {
  const hub = new FakeHub();
  beforeAll(async () => {
    await hub.start();
    hub.add('t1/tiny-llama', 'main', {
      ...filesOf(TIED), // includes reference.json and reference-logits.bin, which are not fetched
      'README.md': Buffer.from('# tiny llama\n'),
      'gguf/tiny-f16.gguf': gguf,
      'original/params.json': Buffer.from('{}'),
    });
    hub.add('t1/tiny-llama3', 'main', { ...filesOf(SHARDED), 'consolidated.safetensors': Buffer.from('not named by the index') });
    hub.add('t1/bin-only', 'main', { 'config.json': Buffer.from('{}'), 'pytorch_model.bin': Buffer.from('pickle') });
    hub.add('t1/gated', 'main', { 'config.json': Buffer.from('{}') });
    hub.echoAuth.add('t1/gated');
  });
  afterAll(() => hub.stop());
  beforeEach(() => {
    hub.requests.length = 0;
    hub.cut.clear();
    hub.corrupt.clear();
  });
  const opts = (cacheDir: string, more: object = {}) => ({ cacheDir, hfEndpoint: hub.url, ...more });

  it('fetches the model files of a repo; the directory opens and hashes like the fixture; a second call makes no requests', async () => {
    const cacheDir = freshCache();
    const log: string[] = [];
    const r = await resolveModel('hf://t1/tiny-llama', opts(cacheDir, { log: (l: string) => log.push(l) }));
    expect(r.uri).toBe('hf://t1/tiny-llama@main');
    expect(r.sha256).toBe(await contentHash(TIED));
    expect(await contentHash(r.path)).toBe(r.sha256);
    expect(readdirSync(r.path).sort()).toEqual(['.t1-source.json', ...TIED_MODEL_FILES]);
    for (const f of TIED_MODEL_FILES) expect(readFileSync(join(r.path, f)).equals(readFileSync(join(TIED, f))), f).toBe(true);
    const opened = openPretrained(r.path);
    expect(opened.format).toBe('hf');
    expect(opened.config).toEqual(openPretrained(TIED).config);
    expect(log.at(-1)).toBe(`hf://t1/tiny-llama@main: fetched, sha256 ${r.sha256}`);

    // Exactly the endpoints @huggingface/hub calls: one tree listing, and per file a range probe and the download.
    const paths = hub.requests.map((q) => q.url);
    expect(paths[0]).toBe('/api/models/t1/tiny-llama/tree/main?recursive=false&expand=false');
    expect(paths.slice(1).every((p) => p.startsWith('/t1/tiny-llama/resolve/main/'))).toBe(true);
    expect(new Set(paths.slice(1).map((p) => p.split('/').pop()))).toEqual(new Set(TIED_MODEL_FILES));
    expect(hub.requests).toHaveLength(1 + 2 * TIED_MODEL_FILES.length);
    // ...the probe asks for one byte (size and ETag from its headers), the download for all of them.
    expect(hub.requests.filter((q) => q.range === 'bytes=0-0')).toHaveLength(TIED_MODEL_FILES.length);
    expect(hub.requests.filter((q) => q.range === undefined)).toHaveLength(1 + TIED_MODEL_FILES.length);
    expect(hub.requests.every((q) => q.auth === undefined)).toBe(true);

    hub.requests.length = 0;
    expect(await resolveModel('hf://t1/tiny-llama', opts(cacheDir))).toEqual(r);
    expect(await resolveModel('hf://t1/tiny-llama@main', opts(cacheDir, { expectSha256: r.sha256 }))).toEqual(r);
    expect(hub.requests).toHaveLength(0);
    const wrong = '0'.repeat(64);
    expect((await failure(resolveModel('hf://t1/tiny-llama', opts(cacheDir, { expectSha256: wrong })))).message).toBe(
      `hf://t1/tiny-llama@main: content sha256 is ${r.sha256}, expected ${wrong}`,
    );
    expect(hub.requests).toHaveLength(0);
  });

  it('a sharded repo: the index and the shards it names, nothing else', async () => {
    const r = await resolveModel('hf://t1/tiny-llama3', opts(freshCache()));
    expect(readdirSync(r.path)).not.toContain('consolidated.safetensors');
    expect(readdirSync(r.path)).toContain('model-00003-of-00003.safetensors');
    expect(r.sha256).toBe(await contentHash(SHARDED));
    expect(openPretrained(r.path).config).toEqual(openPretrained(SHARDED).config);
  });

  it('a single GGUF file in a folder of the repo', async () => {
    const cacheDir = freshCache();
    const r = await resolveModel('hf://t1/tiny-llama/gguf/tiny-f16.gguf', opts(cacheDir));
    expect(r.sha256).toBe(sha256(gguf));
    expect(statSync(r.path).isFile()).toBe(true);
    expect(r.path.endsWith('/tiny-f16.gguf')).toBe(true);
    expect(openPretrained(r.path).format).toBe('gguf');
    expect(hub.requests.map((q) => q.url)[0]).toBe('/api/models/t1/tiny-llama/tree/main/gguf?recursive=false&expand=false');
    hub.requests.length = 0;
    expect(await resolveModel('hf://t1/tiny-llama/gguf/tiny-f16.gguf@main', opts(cacheDir))).toEqual(r);
    expect(hub.requests).toHaveLength(0);
  });

  it('a repo, revision or file that does not exist: one line naming the URI and the endpoint; nothing is cached', async () => {
    const cacheDir = freshCache();
    for (const uri of [
      'hf://t1/nope',
      'hf://t1/tiny-llama@v9',
      'hf://t1/tiny-llama/gguf/missing.gguf',
      'hf://t1/tiny-llama/nodir/x.gguf',
    ]) {
      const e = await failure(resolveModel(uri, opts(cacheDir)));
      expect(e).toBeInstanceOf(ModelSourceError);
      expect(String(e)).toBe(`ModelSourceError: ${parseModelUri(uri).uri}: not found on ${hub.url}`);
    }
    expect(readdirSync(cacheDir)).toEqual([]);
    const notModel = await failure(resolveModel('hf://t1/bin-only', opts(cacheDir)));
    expect(notModel).toBeInstanceOf(ModelSourceError);
    expect(notModel.message).toBe('hf://t1/bin-only@main: no *.safetensors weights, only weights in other formats');
  });

  it('sends the token to the hub, and never puts it in an error', async () => {
    const cacheDir = freshCache();
    const r = await resolveModel('hf://t1/tiny-llama', opts(cacheDir, { hfToken: TOKEN }));
    expect(r.sha256).toBe(await contentHash(TIED));
    expect(hub.requests.length).toBeGreaterThan(0);
    expect(hub.requests.every((q) => q.auth === `Bearer ${TOKEN}`)).toBe(true);

    const notFound = await failure(resolveModel('hf://t1/nope@v1', opts(cacheDir, { hfToken: TOKEN })));
    expect(String(notFound)).toBe(`ModelSourceError: hf://t1/nope@v1: not found on ${hub.url}`);
    // A server that echoes the Authorization header in its error body.
    const gated = await failure(resolveModel('hf://t1/gated', opts(cacheDir, { hfToken: TOKEN })));
    expect(gated).toBeInstanceOf(ModelSourceError);
    expect(gated.message).toBe(
      `hf://t1/gated@main: ${hub.url} refused access (gated or private): Access to t1/gated is restricted for Bearer ***`,
    );
    const badToken = 'not-a-token-qwerty';
    const bad = await failure(resolveModel('hf://t1/tiny-llama@other', opts(cacheDir, { hfToken: badToken })));
    expect(bad.message).toBe('hf://t1/tiny-llama@other: the Hugging Face token does not start with "hf_"');
    for (const e of [notFound, gated, bad]) {
      expect(e.message + e.stack).not.toContain(TOKEN);
      expect(e.message + e.stack).not.toContain(badToken);
    }
  });

  it('a download cut short or corrupted is never published; the next call fetches it whole', async () => {
    const cacheDir = freshCache();
    hub.cut.add('model.safetensors');
    const cut = await failure(resolveModel('hf://t1/tiny-llama', opts(cacheDir)));
    expect(cut).toBeInstanceOf(ModelFetchError);
    expect(cut.message).toMatch(/^hf:\/\/t1\/tiny-llama@main: model\.safetensors: /);
    expect(readdirSync(cacheDir)).toEqual([]);
    hub.cut.clear();

    hub.corrupt.add('model.safetensors');
    const bad = await failure(resolveModel('hf://t1/tiny-llama', opts(cacheDir)));
    expect(bad).toBeInstanceOf(ModelFetchError);
    expect(bad.message).toMatch(/^hf:\/\/t1\/tiny-llama@main: model\.safetensors: sha256 [0-9a-f]{64}, the source lists [0-9a-f]{64}$/);
    hub.corrupt.clear();
    hub.corrupt.add('config.json'); // a small file: checked against its git oid
    expect((await failure(resolveModel('hf://t1/tiny-llama', opts(cacheDir)))).message).toMatch(
      /config\.json: git oid [0-9a-f]{40}, the source lists/,
    );
    expect(readdirSync(cacheDir)).toEqual([]);
    hub.corrupt.clear();

    const r = await resolveModel('hf://t1/tiny-llama', opts(cacheDir));
    expect(r.sha256).toBe(await contentHash(TIED));
    expect(readdirSync(cacheDir)).toHaveLength(1);

    // A cache entry that lost bytes (or its record) is fetched again.
    truncateSync(join(r.path, 'model.safetensors'), 100);
    hub.requests.length = 0;
    expect(await resolveModel('hf://t1/tiny-llama', opts(cacheDir))).toEqual(r);
    expect(hub.requests.length).toBeGreaterThan(0);
    expect(statSync(join(r.path, 'model.safetensors')).size).toBe(statSync(join(TIED, 'model.safetensors')).size);
    rmSync(join(r.path, '.t1-source.json'));
    hub.requests.length = 0;
    expect(await resolveModel('hf://t1/tiny-llama', opts(cacheDir))).toEqual(r);
    expect(hub.requests.length).toBeGreaterThan(0);

    // What a process killed mid-download leaves (its temporary directory) is swept by the next fetch.
    const leftover = join(cacheDir, `.tmp-${basename(r.path)}-99999-dead`);
    mkdirSync(leftover);
    writeFileSync(join(leftover, 'model.safetensors'), 'half');
    rmSync(r.path, { recursive: true });
    expect(await resolveModel('hf://t1/tiny-llama', opts(cacheDir))).toEqual(r);
    expect(readdirSync(cacheDir)).toEqual([basename(r.path)]);
  });

  it('an unreachable endpoint is a retryable fetch error', async () => {
    const closed = createServer();
    const url = await listen(closed);
    await new Promise((r) => closed.close(r));
    const e = await failure(resolveModel('hf://t1/tiny-llama', { cacheDir: freshCache(), hfEndpoint: url, hfToken: TOKEN }));
    expect(e).toBeInstanceOf(ModelFetchError);
    expect(e).not.toBeInstanceOf(UserError);
    expect(e.message).toBe(`hf://t1/tiny-llama@main: fetching from ${url} failed: fetch failed: ECONNREFUSED`);
  });
});

// ---------------------------------------------------------------------------------------------
// A loopback S3 (path style): HeadObject, ListObjectsV2 and GetObject, which is all we use.

class FakeS3 extends LoopbackServer {
  readonly objects = new Map<string, Buffer>(); // "bucket/key"
  readonly requests: string[] = [];

  protected handle(req: IncomingMessage, res: ServerResponse): void {
    this.requests.push(`${req.method} ${req.url}`);
    const url = new URL(req.url!, this.url);
    const [, bucket, ...rest] = url.pathname.split('/');
    const key = decodeURIComponent(rest.join('/'));
    const xml = (status: number, body: string) => {
      res.writeHead(status, { 'content-type': 'application/xml' });
      res.end(`<?xml version="1.0" encoding="UTF-8"?>\n${body}`);
    };
    if (bucket !== 'models')
      return xml(404, '<Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message></Error>');
    if (!key && url.searchParams.get('list-type') === '2') {
      const prefix = url.searchParams.get('prefix') ?? '';
      const contents: string[] = [];
      const common = new Set<string>();
      for (const [k, v] of [...this.objects].sort()) {
        const name = k.slice('models/'.length);
        if (!k.startsWith('models/') || !name.startsWith(prefix)) continue;
        const sub = name.slice(prefix.length);
        if (sub.includes('/')) common.add(prefix + sub.split('/')[0] + '/');
        else
          contents.push(
            `<Contents><Key>${name}</Key><LastModified>2026-01-01T00:00:00.000Z</LastModified><ETag>"${sha256(v).slice(0, 32)}"</ETag><Size>${v.length}</Size><StorageClass>STANDARD</StorageClass></Contents>`,
          );
      }
      const prefixes = [...common].map((p) => `<CommonPrefixes><Prefix>${p}</Prefix></CommonPrefixes>`).join('');
      return xml(
        200,
        `<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>models</Name><Prefix>${prefix}</Prefix><KeyCount>${contents.length + common.size}</KeyCount><MaxKeys>1000</MaxKeys><Delimiter>/</Delimiter><IsTruncated>false</IsTruncated>${contents.join('')}${prefixes}</ListBucketResult>`,
      );
    }
    const data = this.objects.get(`${bucket}/${key}`);
    if (!data) {
      if (req.method === 'HEAD') return void res.writeHead(404).end();
      return xml(404, `<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message><Key>${key}</Key></Error>`);
    }
    res.writeHead(200, {
      'content-type': 'application/octet-stream',
      'content-length': data.length,
      etag: `"${sha256(data).slice(0, 32)}"`,
      'last-modified': new Date(0).toUTCString(),
    });
    res.end(req.method === 'HEAD' ? undefined : data);
  }
}

describe('s3:// (loopback S3)', () => {
  const s3server = new FakeS3();
  let s3: ReturnType<typeof makeS3Client>;
  beforeAll(async () => {
    await s3server.start();
    s3 = makeS3Client({
      endpoint: s3server.url,
      bucket: 'models',
      region: 'us-east-1',
      accessKeyId: 'test',
      secretAccessKey: 'test',
      forcePathStyle: true,
    });
    for (const [name, data] of Object.entries(filesOf(TIED))) s3server.objects.set(`models/bases/tiny/${name}`, data);
    s3server.objects.set('models/bases/tiny/extra/notes.txt', Buffer.from('x'));
    s3server.objects.set('models/bases/tiny-f16.gguf', gguf);
  });
  afterAll(async () => {
    s3.destroy();
    await s3server.stop();
  });

  it('a prefix holding a model directory, and a single object; the second call makes no requests', async () => {
    const cacheDir = freshCache();
    const dir = await resolveModel('s3://models/bases/tiny', { cacheDir, s3 });
    expect(dir.sha256).toBe(await contentHash(TIED));
    expect(readdirSync(dir.path).sort()).toEqual(['.t1-source.json', ...TIED_MODEL_FILES]);
    expect(openPretrained(dir.path).format).toBe('hf');
    const file = await resolveModel('s3://models/bases/tiny-f16.gguf', { cacheDir, s3 });
    expect(file.sha256).toBe(sha256(gguf));
    expect(openPretrained(file.path).format).toBe('gguf');
    s3server.requests.length = 0;
    expect(await resolveModel('s3://models/bases/tiny', { cacheDir, s3 })).toEqual(dir);
    expect(await resolveModel('s3://models/bases/tiny-f16.gguf', { cacheDir, s3 })).toEqual(file);
    expect(s3server.requests).toEqual([]);
  });

  it('a missing key or bucket is one line naming the URI', async () => {
    const cacheDir = freshCache();
    const missing = await failure(resolveModel('s3://models/bases/nope.gguf', { cacheDir, s3 }));
    expect(missing).toBeInstanceOf(ModelSourceError);
    expect(missing.message).toBe('s3://models/bases/nope.gguf: no such object, and no objects under bases/nope.gguf/');
    const bucket = await failure(resolveModel('s3://other/bases/tiny', { cacheDir, s3 }));
    expect(bucket).toBeInstanceOf(ModelSourceError);
    expect(bucket.message).toBe('s3://other/bases/tiny: no such bucket');
    expect(readdirSync(cacheDir)).toEqual([]);
  });
});
