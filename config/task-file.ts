/**
 * A jsonl task's file: read from disk or S3, refused before a campaign starts when any line is bad
 * or the file cannot serve the config, pinned by sha256 in the config (with the characters beyond
 * ASCII it needs as the model's extra tokens), and loaded where its problems are drawn, by the
 * caller, who passes the loaded file along (every stage then draws its problems from the very bytes
 * the campaign was started with; a worker keeps the last few files it loaded).
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { teacherMaxChars, type CampaignConfig } from './campaign';
import { grantedTaskFile, taskFileGrantError, USER_ACCESS, type Access } from '../util/grants';
import { ModelConfigSchema } from '../model/config';
import { ConfigError } from '../util/errors';
import { parseJsonlTask, TaskFileError, type JsonlDataset } from '../tasks/jsonl';
import { poolOf, splitOf } from '../tasks/splits';

/** `s3://bucket/key`: bucket and key. */
export const S3_URI = /^s3:\/\/([^/]+)\/(.+)$/;

/** What a file is checked for: a whole campaign, or SFT data alone (`t1 synthesize`). */
export type Scope = 'campaign' | 'synthesis';

/**
 * The file's bytes as text and their sha256; a local path or s3://bucket/key (same endpoint and
 * credentials as checkpoints). A worker reads only what its grants allow (util/grants.ts),
 * checked before anything is read: a refusal is a ConfigError naming task.file.
 */
export async function readTaskFile(file: string, access: Access, s3?: S3Client): Promise<{ body: string; sha256: string }> {
  let bytes: Uint8Array;
  const m = S3_URI.exec(file);
  let path = file;
  if (access !== USER_ACCESS) {
    // The check resolves symlinks; the read opens the resolved path, not the name the config gave.
    const granted = grantedTaskFile(access.grants, 'task.file', file, access.checkpointBucket);
    if ('error' in granted) throw new ConfigError(granted.error);
    path = granted.path;
  }
  try {
    if (m) {
      if (!s3) throw new Error(`readTaskFile: ${file} needs an S3 client`);
      const r = await s3.send(new GetObjectCommand({ Bucket: m[1], Key: m[2] }));
      bytes = await r.Body!.transformToByteArray();
    } else bytes = await readFile(path);
  } catch (e: any) {
    const missing = e?.code === 'ENOENT' || e?.name === 'NoSuchKey' || e?.name === 'NoSuchBucket' || e?.$metadata?.httpStatusCode === 404;
    if (missing) throw new TaskFileError(`task.file: ${file} does not exist`);
    throw e;
  }
  return { body: Buffer.from(bytes).toString('utf8'), sha256: createHash('sha256').update(bytes).digest('hex') };
}

/** What the config asks of the file that it cannot give (each message names the field); `synthesis`: SFT data only. */
export function poolErrors(config: CampaignConfig, d: JsonlDataset, scope: Scope = 'campaign'): string[] {
  const { min, max } = config.task.difficulty;
  const splits = config.task.splits;
  const problems = d.problems.filter((p) => p.difficulty >= min && p.difficulty <= max);
  const count = (f: (p: (typeof problems)[number]) => boolean) => problems.filter(f).length;
  const endpoint = config.data.teacher.kind === 'endpoint';
  const anyTrace = endpoint || config.data.style === 'direct';
  const test = count((p) => splitOf(p, splits) === 'test');
  const needs: [field: string, wanted: number, have: number, what: string][] = [
    [
      'data.sftExamples',
      config.data.sftExamples,
      count((p) => poolOf(p, splits) === 'sft' && (anyTrace || p.data.solution !== undefined)),
      anyTrace ? 'SFT-pool problems' : 'SFT-pool problems with a solution (no endpoint teacher is configured)',
    ],
  ];
  if (scope === 'campaign')
    needs.push(
      ['data.valProblems', config.data.valProblems, count((p) => splitOf(p, splits) === 'val'), 'validation problems'],
      ['eval.problems', config.eval.problems, test, 'test problems'],
      ['eval.scaling.problems', config.eval.scaling.enabled ? config.eval.scaling.problems : 0, test, 'test problems'],
      ['rl.promptsPerStep', 1, count((p) => poolOf(p, splits) === 'rl'), 'RL-pool problems'],
    );
  const errors = needs
    .filter(([, wanted, have]) => wanted > have)
    .map(([field, wanted, have, what]) => `${field}: ${wanted} wanted, but the file has ${have} ${what} (difficulty ${min}..${max})`);
  const budget = teacherMaxChars(config);
  const long = problems.filter((p) => p.prompt.length >= budget);
  if (long.length)
    errors.push(
      `task.file: ${long.length} problem(s) take the whole ${budget}-character budget (data.teacher.maxChars, model.contextLength): lines ${long
        .slice(0, 10)
        .map((p) => p.data.line)
        .join(', ')}${long.length > 10 ? ', …' : ''}`,
    );
  return errors;
}

/**
 * The config with its jsonl file checked and pinned (absolute path, sha256); other tasks pass
 * through. Throws ConfigError/TaskFileError naming every problem found. `access`: a worker's
 * (the pinTask activity: its grants apply) or the user's own (the CLI).
 */
export async function pinTaskFile(
  config: CampaignConfig,
  access: Access,
  s3?: S3Client,
  scope: Scope = 'campaign',
): Promise<CampaignConfig> {
  return (await pinAndLoadTaskFile(config, access, s3, scope)).config;
}

/** pinTaskFile, and the file it pinned, loaded (for a caller that goes on to draw its problems). */
export async function pinAndLoadTaskFile(
  config: CampaignConfig,
  access: Access,
  s3?: S3Client,
  scope: Scope = 'campaign',
): Promise<{ config: CampaignConfig; file?: JsonlDataset }> {
  if (config.task.name !== 'jsonl' || !config.task.file) return { config };
  const file = S3_URI.test(config.task.file) ? config.task.file : resolve(config.task.file);
  const { body, sha256 } = await readTaskFile(file, access, s3);
  if (config.task.sha256 && config.task.sha256 !== sha256)
    throw new ConfigError(`task.sha256: ${file} has sha256 ${sha256}, not the pinned ${config.task.sha256} (the file changed)`);
  const d = parseJsonlTask(file, body, sha256);
  const errors = poolErrors(config, d, scope);
  if (errors.length) throw new ConfigError(errors.join('\n'));
  // The model's vocabulary is the file's alphabet: recorded in the config, and so in every checkpoint.
  const { base, lora, ...model }: Partial<CampaignConfig['model']> = { ...config.model };
  delete model.extraChars;
  const pinned = {
    ...config,
    task: { ...config.task, file, sha256 },
    model: {
      ...ModelConfigSchema.parse({ ...model, ...(d.extraChars && { extraChars: d.extraChars }) }),
      ...(base && { base }),
      ...(lora && { lora }),
    },
  };
  return { config: pinned, file: d };
}

/** Files loaded before, by sha256: a caller's own (a worker keeps the last few it loaded). */
export interface LoadedFiles {
  get(sha256: string): JsonlDataset | undefined;
  set(sha256: string, file: JsonlDataset): void;
}

/**
 * A pinned jsonl task's file, loaded, for the caller to pass to what draws its problems (undefined
 * for a generated task). `loaded`: files this caller loaded before, reused by sha256. Every call
 * checks the file against the worker's grants, even when the caller has the bytes.
 */
export async function loadTaskData(
  task: CampaignConfig['task'],
  s3: S3Client,
  access: Access,
  loaded?: LoadedFiles,
): Promise<JsonlDataset | undefined> {
  if (task.name !== 'jsonl' || !task.file) return undefined;
  if (!task.sha256) throw new ConfigError('task.sha256: the jsonl file was not pinned when the campaign started');
  const known = loaded?.get(task.sha256);
  if (known) {
    const refused = access === USER_ACCESS ? undefined : taskFileGrantError(access.grants, 'task.file', task.file, access.checkpointBucket);
    if (refused) throw new ConfigError(refused);
    return known;
  }
  const { body, sha256 } = await readTaskFile(task.file, access, s3);
  if (sha256 !== task.sha256)
    throw new ConfigError(`task.file: ${task.file} changed since the campaign started (sha256 ${sha256}, pinned ${task.sha256})`);
  const file = parseJsonlTask(task.file, body, sha256);
  loaded?.set(sha256, file);
  return file;
}
