/**
 * Where t1 finds Temporal and S3, and where the local stack lives. One zod schema is the source of
 * truth; values come from flags, then T1_* environment variables, then defaults that point at the
 * local stack started by `t1 stack up`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { ConfigError } from '../util/errors';

const port = z.coerce.number().int().min(1).max(65535);
const bool = z
  .union([z.boolean(), z.enum(['true', 'false', '1', '0', 'yes', 'no'])])
  .transform((v) => v === true || v === 'true' || v === '1' || v === 'yes');
const hostPort = z.string().regex(/^[A-Za-z0-9.\-[\]:]+:\d{1,5}$/, 'expected host:port, e.g. 127.0.0.1:7233');
const httpUrl = z.url({ protocol: /^https?$/, error: 'expected an http(s) URL, e.g. http://127.0.0.1:8333' });

export const StackSchema = z.object({
  stateDir: z.string().min(1),
  cacheDir: z.string().min(1),
  temporalPort: port.default(7233),
  temporalUiPort: port.default(8233),
  /** SeaweedFS takes s3Port..s3Port+3 and each of those +10000 for gRPC. */
  s3Port: port.max(55532).default(8333),
  /** Where the dev server's web UI sends payloads to decode (`t1 codec-server`); may carry its token in the path. */
  uiCodecEndpoint: httpUrl.optional(),
});

/** An AES-256 key for payload encryption (infra/codec.ts), base64 so that it travels as JSON to compute processes. */
export interface PayloadKey {
  id: string;
  key: string;
}

/**
 * `ID:BASE64KEY` entries separated by commas or whitespace; the first encrypts, all decrypt. Messages
 * name entries by position and id, never by content (a malformed entry may be a key).
 */
const payloadKeys = z.string().transform((s, ctx): PayloadKey[] => {
  const keys: PayloadKey[] = [];
  const entries = s.split(/[\s,]+/).filter(Boolean);
  if (!entries.length) ctx.addIssue({ code: 'custom', message: 'expected ID:BASE64KEY entries, e.g. k2:<32 bytes in base64>,k1:<…>' });
  entries.forEach((entry, i) => {
    const m = /^([A-Za-z0-9._-]{1,64}):([A-Za-z0-9+/_-]+={0,2})$/.exec(entry);
    const bytes = m ? Buffer.from(m[2]!, 'base64') : undefined;
    if (!m || !bytes) return ctx.addIssue({ code: 'custom', message: `entry ${i + 1}: expected ID:BASE64KEY (id of A-Z a-z 0-9 . _ -)` });
    if (bytes.length !== 32)
      return ctx.addIssue({ code: 'custom', message: `key "${m[1]}": expected 32 bytes in base64 (AES-256), got ${bytes.length}` });
    if (keys.some((k) => k.id === m[1])) return ctx.addIssue({ code: 'custom', message: `key id "${m[1]}" appears twice` });
    keys.push({ id: m[1]!, key: bytes.toString('base64') });
  });
  return keys;
});

export const TemporalSchema = z.object({
  address: hostPort,
  namespace: z
    .string()
    .regex(/^[A-Za-z0-9._-]+$/, 'expected a namespace name')
    .default('default'),
  uiUrl: httpUrl,
  tls: z
    .object({
      enabled: bool.default(false),
      serverName: z.string().optional(),
      caFile: z.string().optional(),
      certFile: z.string().optional(),
      keyFile: z.string().optional(),
    })
    .refine((t) => !t.certFile === !t.keyFile, { message: 'certFile and keyFile must be given together' })
    .default({ enabled: false }),
  /** Payload encryption keys, newest first; absent: payloads are stored as plaintext. */
  payloadKeys: payloadKeys.optional(),
});

function required(hint: string) {
  return z.string({ error: (i) => (i.input === undefined ? `missing: ${hint}` : undefined) }).min(1, `empty: ${hint}`);
}

export const S3Schema = z.object({
  endpoint: httpUrl,
  bucket: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'expected an S3 bucket name (3-63 chars of a-z, 0-9, ".", "-")'),
  region: z.string().min(1).default('us-east-1'),
  accessKeyId: required('set T1_S3_ACCESS_KEY_ID, or run `t1 stack up` for local credentials'),
  secretAccessKey: required('set T1_S3_SECRET_ACCESS_KEY, or run `t1 stack up` for local credentials'),
  forcePathStyle: bool.default(true),
});

export const ConnectionSchema = z.object({ stack: StackSchema, temporal: TemporalSchema, s3: S3Schema });
export type StackConfig = z.infer<typeof StackSchema>;
export type TemporalConfig = z.infer<typeof TemporalSchema>;
export type S3Config = z.infer<typeof S3Schema>;
export type ConnectionConfig = z.infer<typeof ConnectionSchema>;

/** Which environment variable feeds which field: used for loading and for naming a bad value. */
const ENV: Record<string, string> = {
  'stack.stateDir': 'T1_STATE_DIR',
  'stack.cacheDir': 'T1_CACHE_DIR',
  'stack.temporalPort': 'T1_TEMPORAL_PORT',
  'stack.temporalUiPort': 'T1_TEMPORAL_UI_PORT',
  'stack.s3Port': 'T1_S3_PORT',
  'stack.uiCodecEndpoint': 'T1_UI_CODEC_ENDPOINT',
  'temporal.address': 'T1_TEMPORAL_ADDRESS',
  'temporal.namespace': 'T1_TEMPORAL_NAMESPACE',
  'temporal.uiUrl': 'T1_TEMPORAL_UI_URL',
  'temporal.tls.enabled': 'T1_TEMPORAL_TLS',
  'temporal.tls.serverName': 'T1_TEMPORAL_TLS_SERVER_NAME',
  'temporal.tls.caFile': 'T1_TEMPORAL_TLS_CA',
  'temporal.tls.certFile': 'T1_TEMPORAL_TLS_CERT',
  'temporal.tls.keyFile': 'T1_TEMPORAL_TLS_KEY',
  'temporal.payloadKeys': 'T1_PAYLOAD_KEYS',
  'temporal.payloadKeysFile': 'T1_PAYLOAD_KEYS_FILE',
  's3.endpoint': 'T1_S3_ENDPOINT',
  's3.bucket': 'T1_S3_BUCKET',
  's3.region': 'T1_S3_REGION',
  's3.accessKeyId': 'T1_S3_ACCESS_KEY_ID',
  's3.secretAccessKey': 'T1_S3_SECRET_ACCESS_KEY',
  's3.forcePathStyle': 'T1_S3_FORCE_PATH_STYLE',
};
const SECRET_FIELDS = new Set(['s3.secretAccessKey', 's3.accessKeyId', 'temporal.payloadKeys', 'stack.uiCodecEndpoint']);

/** A setting as messages name it: its field and the variable that feeds it, e.g. `s3.bucket [T1_S3_BUCKET]`. */
export function settingName(field: keyof typeof ENV): string {
  return ENV[field] ? `${field} [${ENV[field]}]` : field;
}

export { ConfigError };

/** Flags use the field path, e.g. `{ 's3.bucket': 'x' }` (the CLI maps --s3-bucket to it). */
export type Overrides = Partial<Record<keyof typeof ENV, string>>;

function rawValues(overrides: Overrides, env: NodeJS.ProcessEnv): Record<string, unknown> {
  const raw: Record<string, unknown> = {};
  for (const [path, name] of Object.entries(ENV)) {
    const v = overrides[path] ?? env[name];
    if (v !== undefined && v !== '') raw[path] = v;
  }
  return raw;
}

/** The local stack's settings alone: `t1 stack` needs no credentials. */
export function loadStack(overrides: Overrides = {}, env: NodeJS.ProcessEnv = process.env): StackConfig {
  const raw = rawValues(overrides, env);
  const stateDir = String(raw['stack.stateDir'] ?? join(env.XDG_STATE_HOME || join(homedir(), '.local', 'state'), 't1'));
  const cacheDir = String(raw['stack.cacheDir'] ?? join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 't1'));
  return parseGroup(StackSchema, 'stack', { ...pick(raw, 'stack.'), stateDir, cacheDir });
}

/** Temporal's settings alone: `t1 codec-server` needs no S3. */
export function loadTemporal(overrides: Overrides = {}, env: NodeJS.ProcessEnv = process.env): TemporalConfig {
  const stack = loadStack(overrides, env);
  const { payloadKeysFile, ...temporalRaw } = pick(rawValues(overrides, env), 'temporal.');
  return parseGroup(TemporalSchema, 'temporal', {
    address: `127.0.0.1:${stack.temporalPort}`,
    uiUrl: `http://127.0.0.1:${stack.temporalUiPort}`,
    ...nest(temporalRaw),
    ...(payloadKeysFile === undefined ? {} : { payloadKeys: readKeysFile(String(payloadKeysFile), temporalRaw.payloadKeys) }),
  });
}

export function loadConnection(overrides: Overrides = {}, env: NodeJS.ProcessEnv = process.env): ConnectionConfig {
  const raw = rawValues(overrides, env);
  const stack = loadStack(overrides, env);
  const local = localCredentials(stack.stateDir);
  const temporal = loadTemporal(overrides, env);
  const s3 = parseGroup(S3Schema, 's3', {
    endpoint: `http://127.0.0.1:${stack.s3Port}`,
    bucket: 't1-checkpoints',
    ...(local ?? {}),
    ...pick(raw, 's3.'),
  });
  return { stack, temporal, s3 };
}

/** Credentials `t1 stack up` generated for the local S3 server (file mode 0600). */
export function localCredentialsPath(stateDir: string): string {
  return join(stateDir, 's3-credentials.json');
}

function localCredentials(stateDir: string): { accessKeyId: string; secretAccessKey: string } | undefined {
  const p = localCredentialsPath(stateDir);
  if (!existsSync(p)) return undefined;
  return JSON.parse(readFileSync(p, 'utf8'));
}

/** A key file (a mounted Secret, say) holds what T1_PAYLOAD_KEYS would: one of the two, not both. */
function readKeysFile(path: string, inline: unknown): string {
  const name = settingName('temporal.payloadKeysFile');
  if (inline !== undefined) fail(`Invalid configuration:\n  ${name}: set it or ${settingName('temporal.payloadKeys')}, not both`);
  try {
    return readFileSync(path, 'utf8');
  } catch (e: any) {
    return fail(`Invalid configuration:\n  ${name}: cannot read ${JSON.stringify(path)} (${e.code ?? e.message})`);
  }
}

function pick(raw: Record<string, unknown>, prefix: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(raw)) if (k.startsWith(prefix)) out[k.slice(prefix.length)] = v;
  return out;
}

function nest(flat: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, any> = {};
  for (const [k, v] of Object.entries(flat)) {
    const parts = k.split('.');
    let o = out;
    for (const p of parts.slice(0, -1)) o = o[p] ??= {};
    o[parts[parts.length - 1]] = v;
  }
  return out;
}

function parseGroup<S extends z.ZodType>(schema: S, group: string, value: unknown): z.infer<S> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const lines = r.error.issues.map((i) => {
    const field = [group, ...i.path.map(String)].join('.');
    const envName = ENV[field];
    const raw = i.path.reduce<any>((o, k) => (o == null ? undefined : o[k as string]), value);
    const shown = SECRET_FIELDS.has(field) || raw === undefined ? '' : ` (got ${JSON.stringify(raw)})`;
    return `  ${envName ? settingName(field) : field}: ${i.message}${shown}`;
  });
  return fail(`Invalid configuration:\n${lines.join('\n')}`);
}

function fail(message: string): never {
  throw new ConfigError(message);
}

/** A copy safe to print: credentials, keys (their ids kept) and the UI's codec endpoint replaced. */
export function redacted(c: ConnectionConfig): unknown {
  return {
    stack: { ...c.stack, ...(c.stack.uiCodecEndpoint ? { uiCodecEndpoint: '***' } : {}) },
    temporal: {
      ...c.temporal,
      ...(c.temporal.payloadKeys ? { payloadKeys: c.temporal.payloadKeys.map((k) => ({ id: k.id, key: '***' })) } : {}),
    },
    s3: { ...c.s3, accessKeyId: '***', secretAccessKey: '***' },
  };
}
