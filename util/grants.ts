/**
 * What a worker may read, send or use on behalf of a campaign config. A config is input from
 * whoever can start a workflow, so the secrets it may name (`data.teacher.apiKeyEnv`), the hosts
 * it may send them to (`data.teacher.url`) and the task files it may read (`task.file`, local or
 * s3://) are granted by the worker's own settings (environment and `t1 worker` flags), never by
 * the config. Likewise the pretrained bases it may read (`model.base.uri`: a local path, s3://), except
 * builtin:// models and the hub (hf://, whose endpoint is the worker's setting). Everything not granted is refused, except the default teacher key variable
 * T1_OPENAI_API_KEY (granted for backwards compatibility: it is only ever sent to a granted host)
 * and the checkpoint bucket of the worker's own connection (task files there are always readable).
 *
 * Pure: zod schemas and check functions that return a one-line error naming the config field (or
 * undefined); no secret's value ever enters a message. The one outside read is `realpath`, which
 * the path check takes as a parameter.
 */
import { realpathSync } from 'node:fs';
import { isAbsolute, relative, sep } from 'node:path';
import { z } from 'zod';
import { ConfigError } from './errors';

/** The teacher key variable a config names by default (tasks/config.ts): always granted. */
export const DEFAULT_TEACHER_KEY = 'T1_OPENAI_API_KEY';
/** The worker's own S3 credentials: never granted (an exact grant is refused; a prefix pattern never matches them). */
export const NEVER_GRANTED: readonly string[] = ['T1_S3_ACCESS_KEY_ID', 'T1_S3_SECRET_ACCESS_KEY'];

/** Each grant's environment variable and `t1 worker` flag (both comma-separated lists; a flag may repeat). */
export const GRANT_SETTINGS = {
  secrets: { env: 'T1_ALLOW_SECRETS', flag: 'allow-secret' },
  teacherHosts: { env: 'T1_ALLOW_TEACHER_HOSTS', flag: 'allow-teacher-host' },
  taskDirs: { env: 'T1_ALLOW_TASK_DIRS', flag: 'allow-task-dir' },
  taskBuckets: { env: 'T1_ALLOW_TASK_BUCKETS', flag: 'allow-task-bucket' },
  modelDirs: { env: 'T1_ALLOW_MODEL_DIRS', flag: 'allow-model-dir' },
  modelBuckets: { env: 'T1_ALLOW_MODEL_BUCKETS', flag: 'allow-model-bucket' },
} as const;
type Grant = keyof typeof GRANT_SETTINGS;

const how = (g: Grant) => `--${GRANT_SETTINGS[g].flag} or ${GRANT_SETTINGS[g].env}`;

/** An exact variable name, or a prefix pattern ending in `*` (`T1_TEACHER_KEY_*`). */
const SecretGrantSchema = z
  .string()
  .regex(/^[A-Z_][A-Z0-9_]*\*?$/, 'expected a variable name (A-Z, 0-9, _) or a prefix ending in *, e.g. T1_TEACHER_KEY_*')
  .refine((s) => !NEVER_GRANTED.includes(s), 'the worker’s own S3 credentials are never granted');

/** `host` or `host:port` (IPv6 in brackets); the host as URLs normalise it (lower case, IPv4 forms folded). */
const HostGrantSchema = z.string().transform((s, ctx) => {
  const m = /^(\[[0-9A-Fa-f:.]+\]|[^\s:/?#@[\]\\]+)(?::(\d{1,5}))?$/.exec(s);
  let hostname: string | undefined;
  try {
    hostname = m ? new URL(`http://${m[1]}/`).hostname : undefined;
  } catch {
    hostname = undefined;
  }
  const port = m?.[2] === undefined ? null : Number(m[2]);
  if (!hostname || (port !== null && (port < 1 || port > 65535))) {
    ctx.addIssue({ code: 'custom', message: 'expected HOST or HOST:PORT, e.g. vllm.internal:8000' });
    return z.NEVER;
  }
  return { hostname, port };
});
export type HostGrant = z.output<typeof HostGrantSchema>;

const DirSchema = z
  .string()
  .min(1)
  .transform((d) => (isAbsolute(d) ? d : `${process.cwd()}${sep}${d}`));

const BucketSchema = z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'expected an S3 bucket name');

export const GrantsSchema = z.object({
  /** Variables a config may name as a secret (apiKeyEnv), besides T1_OPENAI_API_KEY. */
  secrets: z.array(SecretGrantSchema).default([]),
  /** Hosts a config's teacher URL may point at; a grant without a port matches the scheme's default port only. */
  teacherHosts: z.array(HostGrantSchema).default([]),
  /** Directories (absolute, symlinks resolved when checked) under which a config's local task file may lie. */
  taskDirs: z.array(DirSchema).default([]),
  /** Buckets a config's s3:// task file may be in, besides the checkpoint bucket. */
  taskBuckets: z.array(BucketSchema).default([]),
  /** Directories under which a config's local pretrained base (a GGUF file or a model directory) may lie. */
  modelDirs: z.array(DirSchema).default([]),
  /** Buckets a config's s3:// pretrained base may be in, besides the checkpoint bucket. */
  modelBuckets: z.array(BucketSchema).default([]),
});
export type Grants = z.output<typeof GrantsSchema>;

/** Nothing granted beyond the defaults. */
export const NO_GRANTS: Grants = GrantsSchema.parse({});

/** A worker acting for a campaign: within its grants, with the bucket of its own connection. */
export interface WorkerAccess {
  grants: Grants;
  checkpointBucket: string;
}
/**
 * The user's own CLI process (`t1 synthesize`, `t1 campaign start` pinning its file): it acts with
 * the user's own rights on the user's own machine, so no grant applies.
 */
export const USER_ACCESS = 'user';
export type Access = WorkerAccess | typeof USER_ACCESS;

/** `t1 worker` flag values (parseArgs with `multiple: true`). */
export type GrantFlags = Partial<Record<(typeof GRANT_SETTINGS)[Grant]['flag'], string[] | string>>;

const list = (v: string | string[] | undefined): string[] =>
  (Array.isArray(v) ? v : v === undefined ? [] : [v])
    .flatMap((s) => s.split(','))
    .map((s) => s.trim())
    .filter(Boolean);

/** The worker's grants: its flags and its environment together; a bad entry is a ConfigError naming the setting. */
export function loadGrants(flags: GrantFlags = {}, env: NodeJS.ProcessEnv = process.env): Grants {
  const raw = Object.fromEntries(
    (Object.keys(GRANT_SETTINGS) as Grant[]).map((g) => [g, [...list(env[GRANT_SETTINGS[g].env]), ...list(flags[GRANT_SETTINGS[g].flag])]]),
  );
  const r = GrantsSchema.safeParse(raw);
  if (r.success) return r.data;
  const lines = r.error.issues.map((i) => {
    const [g, index] = i.path as [Grant, number];
    return `  ${how(g)}: ${JSON.stringify(raw[g][index])}: ${i.message}`;
  });
  throw new ConfigError(`Invalid grants:\n${lines.join('\n')}`);
}

/** Whether a variable may be read as a secret. */
export function isSecretGranted(g: Grants, name: string): boolean {
  if (NEVER_GRANTED.includes(name)) return false;
  if (name === DEFAULT_TEACHER_KEY) return true;
  return g.secrets.some((p) => (p.endsWith('*') ? name.startsWith(p.slice(0, -1)) : name === p));
}

/** `field` names variable `name` as a secret: undefined when granted, else why not. */
export function secretGrantError(g: Grants, field: string, name: string): string | undefined {
  if (isSecretGranted(g, name)) return undefined;
  const own = NEVER_GRANTED.includes(name) ? ' (the worker’s own S3 credentials are never granted)' : ` (grant it with ${how('secrets')})`;
  return `${field}: ${JSON.stringify(name)} is not granted to this worker${own}`;
}

/** `field` is a URL requests go to: undefined when its scheme is http(s) and its host and port are granted, else why not. */
export function hostGrantError(g: Grants, field: string, url: string): string | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return `${field}: not a URL`;
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    return `${field}: scheme ${u.protocol.slice(0, -1)} is not allowed (http or https)`;
  if (u.username || u.password) return `${field}: must not contain credentials`;
  const port = u.port ? Number(u.port) : u.protocol === 'https:' ? 443 : 80;
  if (g.teacherHosts.some((h) => h.hostname === u.hostname && (h.port === null ? u.port === '' : h.port === port))) return undefined;
  return `${field}: host ${u.host} is not granted to this worker (grant it with ${how('teacherHosts')})`;
}

/** The teacher's two checks, the key's first: the first error, or undefined. */
export function teacherGrantError(g: Grants, cfg: { url: string; apiKeyEnv: string }, field = 'data.teacher'): string | undefined {
  return secretGrantError(g, `${field}.apiKeyEnv`, cfg.apiKeyEnv) ?? hostGrantError(g, `${field}.url`, cfg.url);
}

/** `s3://bucket/key`, as task files name objects. */
const S3_URI = /^s3:\/\/([^/]+)\/(.+)$/;

/** Whether `path` lies strictly under `root` (both absolute, symlinks already resolved). */
export function isUnder(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel !== '' && rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel);
}

function realOrNull(p: string, realpath: (p: string) => string): string | null {
  try {
    return realpath(p);
  } catch {
    return null;
  }
}

/**
 * `field` names a task file to read: what to read (the s3:// URI, or the local file's realpath),
 * when it is an object in the checkpoint bucket or a granted bucket, or a local file whose
 * realpath lies under a granted directory's realpath; else why not. A local file that does not
 * exist is refused as one outside is (no probing for files). Read the returned path, not the
 * config's: symlinks are resolved once, here.
 */
export function grantedTaskFile(
  g: Grants,
  field: string,
  file: string,
  checkpointBucket: string,
  realpath: (p: string) => string = realpathSync.native,
): { path: string } | { error: string } {
  return grantedPlace(g, TASK_PLACES, field, file, checkpointBucket, realpath);
}

/**
 * `field` names a pretrained base (model URI): what to read (the URI, or a local path's realpath) when it
 * is builtin://, hf://, an object or prefix in the checkpoint bucket or a granted bucket, or a local
 * file or directory under a granted model directory; else why not.
 */
export function grantedModelSource(
  g: Grants,
  field: string,
  uri: string,
  checkpointBucket: string,
  realpath: (p: string) => string = realpathSync.native,
): { path: string } | { error: string } {
  if (/^(builtin|hf):\/\//.test(uri)) return { path: uri };
  if (/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(uri) && !uri.startsWith('s3://'))
    return {
      error: `${field}: ${uri.split('://')[0]}:// is not a model source a config may name (a granted path, s3://, hf:// or builtin://)`,
    };
  return grantedPlace(g, MODEL_PLACES, field, uri, checkpointBucket, realpath);
}

/** Which grants a kind of file is read under, and how errors name it. */
interface PlaceKind {
  dirs: 'taskDirs' | 'modelDirs';
  buckets: 'taskBuckets' | 'modelBuckets';
  what: string;
  dirName: string;
}
const TASK_PLACES: PlaceKind = { dirs: 'taskDirs', buckets: 'taskBuckets', what: 'file', dirName: 'task' };
const MODEL_PLACES: PlaceKind = { dirs: 'modelDirs', buckets: 'modelBuckets', what: 'file or directory', dirName: 'model' };

/** An s3:// object in the checkpoint bucket or a granted bucket, or a local path under a granted directory. */
function grantedPlace(
  g: Grants,
  kind: PlaceKind,
  field: string,
  file: string,
  checkpointBucket: string,
  realpath: (p: string) => string,
): { path: string } | { error: string } {
  const s3 = S3_URI.exec(file);
  if (s3) {
    const [, bucket, key] = s3;
    if (key.split('/').some((s) => s === '.' || s === '..'))
      return { error: `${field}: the object key must not have "." or ".." segments` };
    if (bucket === checkpointBucket || g[kind.buckets].includes(bucket)) return { path: file };
    return {
      error: `${field}: bucket ${JSON.stringify(bucket)} is not granted to this worker (grant it with ${how(kind.buckets)}; the checkpoint bucket is always granted)`,
    };
  }
  // Not path.resolve: it would fold `link/..` by the letter, where the kernel follows the link first.
  const real = realOrNull(isAbsolute(file) ? file : `${process.cwd()}${sep}${file}`, realpath);
  const roots = g[kind.dirs].map((root) => realOrNull(root, realpath)).filter((r) => r !== null);
  if (real && roots.some((root) => isUnder(root, real))) return { path: real };
  const none = g[kind.dirs].length ? '' : '; it grants none';
  return {
    error: `${field}: ${file} is not an existing ${kind.what} under a ${kind.dirName} directory granted to this worker (grant one with ${how(kind.dirs)}${none})`,
  };
}

/** grantedTaskFile's check alone: undefined when granted, else why not. */
export function taskFileGrantError(
  g: Grants,
  field: string,
  file: string,
  checkpointBucket: string,
  realpath?: (p: string) => string,
): string | undefined {
  const r = grantedTaskFile(g, field, file, checkpointBucket, realpath);
  return 'error' in r ? r.error : undefined;
}

/** One line for a worker's log: what it grants (names, never values). */
export function describeGrants(g: Grants, checkpointBucket: string): string {
  const or = (xs: string[]) => (xs.length ? xs.join(', ') : 'none');
  return [
    `secrets ${[DEFAULT_TEACHER_KEY, ...g.secrets].join(', ')}`,
    `teacher hosts ${or(g.teacherHosts.map((h) => (h.port === null ? h.hostname : `${h.hostname}:${h.port}`)))}`,
    `task dirs ${or(g.taskDirs)}`,
    `task buckets ${[`${checkpointBucket} (checkpoints)`, ...g.taskBuckets].join(', ')}`,
    `model dirs ${or(g.modelDirs)}`,
    `model buckets ${[`${checkpointBucket} (checkpoints)`, ...g.modelBuckets].join(', ')}`,
  ].join('; ');
}

/** The environment a worker's compute processes get: its own S3 credentials and grant settings removed (they get both by IPC). */
export function computeEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const drop = new Set<string>([...NEVER_GRANTED, ...Object.values(GRANT_SETTINGS).map((s) => s.env)]);
  return Object.fromEntries(Object.entries(env).filter(([k]) => !drop.has(k)));
}
