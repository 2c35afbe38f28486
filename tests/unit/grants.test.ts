/** The worker's grants (util/grants.ts): parsing, secret patterns, host:port matching, realpath containment, buckets. */
import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  computeEnv,
  describeGrants,
  grantedModelSource,
  grantedTaskFile,
  hostGrantError,
  isSecretGranted,
  loadGrants,
  NO_GRANTS,
  secretGrantError,
  taskFileGrantError,
  teacherGrantError,
} from '../../util/grants';
import { ConfigError } from '../../util/errors';

const grants = (flags: Record<string, string | string[]> = {}, env: NodeJS.ProcessEnv = {}) => loadGrants(flags, env);

describe('parsing', () => {
  it('takes comma-separated environment variables and repeatable, comma-separated flags, together', () => {
    const g = grants(
      {
        'allow-secret': ['T1_TEACHER_KEY_*', 'OTHER_KEY, THIRD'],
        'allow-teacher-host': 'vllm.internal:8000',
        'allow-task-bucket': ['my-data'],
      },
      { T1_ALLOW_SECRETS: ' MY_KEY ,,', T1_ALLOW_TEACHER_HOSTS: 'VLLM.Internal,[::1]:9000', T1_ALLOW_TASK_DIRS: '/srv/tasks,relative/dir' },
    );
    expect(g.secrets).toEqual(['MY_KEY', 'T1_TEACHER_KEY_*', 'OTHER_KEY', 'THIRD']);
    expect(g.teacherHosts).toEqual([
      { hostname: 'vllm.internal', port: null },
      { hostname: '[::1]', port: 9000 },
      { hostname: 'vllm.internal', port: 8000 },
    ]);
    expect(g.taskDirs).toEqual(['/srv/tasks', join(process.cwd(), 'relative/dir')]);
    expect(g.taskBuckets).toEqual(['my-data']);
  });

  it('grants nothing by default', () => {
    expect(grants()).toEqual({ secrets: [], teacherHosts: [], taskDirs: [], taskBuckets: [], modelDirs: [], modelBuckets: [] });
    expect(grants()).toEqual(NO_GRANTS);
  });

  it('refuses a bad entry, naming the setting, and never grants the worker’s own S3 credentials', () => {
    const bad = (flags: Record<string, string>, env: NodeJS.ProcessEnv = {}) => {
      try {
        grants(flags, env);
      } catch (e) {
        expect(e).toBeInstanceOf(ConfigError);
        return (e as Error).message;
      }
      throw new Error('accepted');
    };
    expect(bad({ 'allow-secret': 'lower_case' })).toMatch(/--allow-secret or T1_ALLOW_SECRETS: "lower_case": expected a variable name/);
    expect(bad({ 'allow-secret': '*' })).toMatch(/"\*": expected a variable name/);
    expect(bad({ 'allow-secret': 'A*B' })).toMatch(/"A\*B": expected a variable name/);
    expect(bad({}, { T1_ALLOW_SECRETS: 'T1_S3_SECRET_ACCESS_KEY' })).toMatch(/"T1_S3_SECRET_ACCESS_KEY": the worker’s own S3 credentials/);
    expect(bad({ 'allow-teacher-host': 'http://vllm:8000' })).toMatch(
      /--allow-teacher-host or T1_ALLOW_TEACHER_HOSTS: "http:\/\/vllm:8000"/,
    );
    for (const h of ['vllm:0', 'vllm:65536', 'vllm/v1', 'user@vllm', 'vllm:80:80', '::1'])
      expect(bad({ 'allow-teacher-host': h })).toContain(h);
    expect(bad({ 'allow-task-bucket': 'Bad_Bucket' })).toMatch(/T1_ALLOW_TASK_BUCKETS: "Bad_Bucket"/);
  });
});

describe('secrets', () => {
  it('grants T1_OPENAI_API_KEY, exact names and prefix patterns, never the S3 credentials', () => {
    const g = grants({ 'allow-secret': 'T1_TEACHER_KEY_*,MY_KEY,T1_*' });
    expect(isSecretGranted(NO_GRANTS, 'T1_OPENAI_API_KEY')).toBe(true);
    expect(isSecretGranted(NO_GRANTS, 'MY_KEY')).toBe(false);
    expect(isSecretGranted(g, 'MY_KEY')).toBe(true);
    expect(isSecretGranted(g, 'MY_KEY_2')).toBe(false);
    expect(isSecretGranted(g, 'T1_TEACHER_KEY_A')).toBe(true);
    expect(isSecretGranted(grants({ 'allow-secret': 'T1_TEACHER_KEY_*' }), 'T1_TEACHER_KEYX')).toBe(false);
    expect(isSecretGranted(g, 'T1_S3_SECRET_ACCESS_KEY')).toBe(false); // T1_* matches it, and still no
    expect(isSecretGranted(g, 'T1_S3_ACCESS_KEY_ID')).toBe(false);
  });

  it('says which field names a variable not granted, and how to grant it', () => {
    expect(secretGrantError(NO_GRANTS, 'data.teacher.apiKeyEnv', 'HOME_KEY')).toBe(
      'data.teacher.apiKeyEnv: "HOME_KEY" is not granted to this worker (grant it with --allow-secret or T1_ALLOW_SECRETS)',
    );
    expect(secretGrantError(NO_GRANTS, 'data.teacher.apiKeyEnv', 'T1_S3_SECRET_ACCESS_KEY')).toBe(
      'data.teacher.apiKeyEnv: "T1_S3_SECRET_ACCESS_KEY" is not granted to this worker (the worker’s own S3 credentials are never granted)',
    );
    expect(secretGrantError(NO_GRANTS, 'data.teacher.apiKeyEnv', 'T1_OPENAI_API_KEY')).toBeUndefined();
  });
});

describe('teacher hosts', () => {
  const g = grants({ 'allow-teacher-host': 'vllm.internal:8000,plain.internal,127.0.0.1:9000,[::1]:9001' });
  const ok = (url: string) => hostGrantError(g, 'data.teacher.url', url) === undefined;

  it('match the URL’s host and port exactly; a grant without a port is the scheme’s default port', () => {
    expect(ok('http://vllm.internal:8000/v1')).toBe(true);
    expect(ok('https://VLLM.internal:8000')).toBe(true);
    expect(ok('http://vllm.internal:8001/v1')).toBe(false);
    expect(ok('http://vllm.internal/v1')).toBe(false);
    expect(ok('http://vllm.internal.evil.com:8000/v1')).toBe(false);
    expect(ok('http://plain.internal/v1')).toBe(true);
    expect(ok('https://plain.internal/v1')).toBe(true);
    expect(ok('http://plain.internal:80/v1')).toBe(true);
    expect(ok('http://plain.internal:8080/v1')).toBe(false);
    expect(ok('https://plain.internal:80/v1')).toBe(false);
    expect(ok('http://[::1]:9001/v1')).toBe(true);
  });

  it('grants no loopback by default; another spelling of a granted address is that address', () => {
    expect(hostGrantError(NO_GRANTS, 'data.teacher.url', 'http://127.0.0.1:9000/v1')).toBe(
      'data.teacher.url: host 127.0.0.1:9000 is not granted to this worker (grant it with --allow-teacher-host or T1_ALLOW_TEACHER_HOSTS)',
    );
    expect(ok('http://localhost:9000/v1')).toBe(false);
    expect(ok('http://2130706433:9000/v1')).toBe(true); // 127.0.0.1, as URLs read it
    expect(ok('http://127.0.0.2:9000/v1')).toBe(false);
  });

  it('refuses other schemes and credentials in the URL', () => {
    expect(hostGrantError(g, 'f', 'ftp://vllm.internal:8000/')).toBe('f: scheme ftp is not allowed (http or https)');
    expect(hostGrantError(g, 'f', 'file:///etc/passwd')).toMatch(/scheme file/);
    expect(hostGrantError(g, 'f', 'http://u:p@vllm.internal:8000/')).toBe('f: must not contain credentials');
    expect(hostGrantError(g, 'f', 'not a url')).toBe('f: not a URL');
  });

  it('checks the key before the host', () => {
    expect(teacherGrantError(g, { url: 'http://vllm.internal:8000', apiKeyEnv: 'NOPE' })).toMatch(/^data\.teacher\.apiKeyEnv: "NOPE"/);
    expect(teacherGrantError(g, { url: 'http://elsewhere:8000', apiKeyEnv: 'T1_OPENAI_API_KEY' })).toMatch(
      /^data\.teacher\.url: host elsewhere:8000/,
    );
    expect(teacherGrantError(g, { url: 'http://vllm.internal:8000', apiKeyEnv: 'T1_OPENAI_API_KEY' })).toBeUndefined();
  });
});

describe('task files', () => {
  // root/            granted
  //   a.jsonl
  //   sub/b.jsonl
  //   escape -> ../outside      a symlink out of the root
  //   escape.jsonl -> ../outside/secret.jsonl
  // outside/secret.jsonl
  // root-evil/c.jsonl          shares the root's name as a prefix
  // link-root -> root          a granted root named through a symlink
  const base = realpathSync(mkdtempSync(join(tmpdir(), 't1-grants-')));
  const root = join(base, 'root');
  mkdirSync(join(root, 'sub'), { recursive: true });
  mkdirSync(join(base, 'outside'));
  mkdirSync(join(base, 'root-evil'));
  for (const f of ['root/a.jsonl', 'root/sub/b.jsonl', 'outside/secret.jsonl', 'root-evil/c.jsonl']) writeFileSync(join(base, f), '{}\n');
  symlinkSync(join(base, 'outside'), join(root, 'escape'));
  symlinkSync(join(base, 'outside', 'secret.jsonl'), join(root, 'escape.jsonl'));
  symlinkSync(root, join(base, 'link-root'));
  afterAll(() => rmSync(base, { recursive: true, force: true }));

  const g = grants({ 'allow-task-dir': root, 'allow-task-bucket': 'shared-data' });
  const check = (file: string, gr = g) => taskFileGrantError(gr, 'task.file', file, 't1-checkpoints');

  it('grants a file whose realpath lies under a granted directory, and reads it there', () => {
    expect(check(join(root, 'a.jsonl'))).toBeUndefined();
    expect(check(join(root, 'sub', 'b.jsonl'))).toBeUndefined();
    expect(check(`${root}/sub/../a.jsonl`)).toBeUndefined();
    expect(grantedTaskFile(g, 'task.file', `${root}/sub/../a.jsonl`, 'b')).toEqual({ path: join(root, 'a.jsonl') });
    // A root named through a symlink is its target; so is a file.
    expect(check(join(base, 'link-root', 'a.jsonl'))).toBeUndefined();
    expect(check(join(root, 'a.jsonl'), grants({ 'allow-task-dir': join(base, 'link-root') }))).toBeUndefined();
  });

  it('refuses a file outside, through a symlink out of the root, by .. or by a sibling sharing the root’s prefix', () => {
    const outside = join(base, 'outside', 'secret.jsonl');
    expect(check(outside)).toBe(
      `task.file: ${outside} is not an existing file under a task directory granted to this worker (grant one with --allow-task-dir or T1_ALLOW_TASK_DIRS)`,
    );
    expect(check(join(root, 'escape', 'secret.jsonl'))).toMatch(/^task\.file: .* is not an existing file under a task directory granted/);
    expect(check(join(root, 'escape.jsonl'))).toMatch(/is not an existing file under/);
    // Written out, not path.join'ed: join folds `..` by the letter, the kernel follows a link first.
    expect(check(`${root}/../outside/secret.jsonl`)).toMatch(/is not an existing file under/);
    expect(check(`${root}/sub/../../outside/secret.jsonl`)).toMatch(/is not an existing file under/);
    expect(check(`${root}/escape/../outside/secret.jsonl`)).toMatch(/is not an existing file under/); // escape/.. is base
    expect(check(`${root}/escape/../root/a.jsonl`)).toBeUndefined(); // and back inside
    expect(grantedTaskFile(g, 'task.file', `${root}/escape/../root/sub/../a.jsonl`, 'b')).toEqual({ path: join(root, 'a.jsonl') });
    expect(check(join(base, 'root-evil', 'c.jsonl'))).toMatch(/is not an existing file under/);
    expect(check(`${root}/../root-evil/c.jsonl`)).toMatch(/is not an existing file under/);
    expect(check(root)).toMatch(/is not an existing file under/); // the root itself
    expect(check('/etc/passwd')).toMatch(/is not an existing file under/);
    expect(relative(process.cwd(), outside).startsWith('..') && check(relative(process.cwd(), outside))).toMatch(
      /is not an existing file under/,
    );
  });

  it('refuses a missing file as it refuses one outside (no probing), and everything when no directory is granted', () => {
    expect(check(join(root, 'missing.jsonl'))).toMatch(/is not an existing file under/);
    expect(check(join(root, 'a.jsonl'), NO_GRANTS)).toMatch(/T1_ALLOW_TASK_DIRS; it grants none\)$/);
    expect(check(join(root, 'a.jsonl'), grants({ 'allow-task-dir': join(base, 'no-such-dir') }))).toMatch(/is not an existing file under/);
  });

  it('grants s3:// objects in the checkpoint bucket and granted buckets only', () => {
    expect(check('s3://t1-checkpoints/inputs/p.jsonl', NO_GRANTS)).toBeUndefined();
    expect(check('s3://shared-data/p.jsonl')).toBeUndefined();
    expect(check('s3://other-bucket/p.jsonl')).toBe(
      'task.file: bucket "other-bucket" is not granted to this worker (grant it with --allow-task-bucket or T1_ALLOW_TASK_BUCKETS; the checkpoint bucket is always granted)',
    );
    expect(check('s3://t1-checkpoints/../other-bucket/p.jsonl')).toBe('task.file: the object key must not have "." or ".." segments');
    expect(check('s3://t1-checkpoints/a/./p.jsonl')).toMatch(/must not have/);
  });
});

describe('pretrained bases (model.base.uri)', () => {
  const base = realpathSync(mkdtempSync(join(tmpdir(), 't1-grants-models-')));
  const models = join(base, 'models');
  mkdirSync(join(models, 'tiny-hf'), { recursive: true });
  writeFileSync(join(models, 'm.gguf'), 'GGUF');
  writeFileSync(join(base, 'secret.gguf'), 'GGUF');
  afterAll(() => rmSync(base, { recursive: true, force: true }));
  const g = grants({ 'allow-model-dir': models, 'allow-model-bucket': 'weights' });
  const check = (uri: string, gr = g) => {
    const r = grantedModelSource(gr, 'model.base.uri', uri, 't1-checkpoints');
    return 'error' in r ? r.error : r.path;
  };

  it('reads local files and directories under a granted model directory, and nothing else on the disk', () => {
    expect(check(join(models, 'm.gguf'))).toBe(join(models, 'm.gguf'));
    expect(check(join(models, 'tiny-hf'))).toBe(join(models, 'tiny-hf'));
    expect(check(join(models, '..', 'secret.gguf'))).toBe(
      `model.base.uri: ${join(models, '..', 'secret.gguf')} is not an existing file or directory under a model directory granted to this worker (grant one with --allow-model-dir or T1_ALLOW_MODEL_DIRS)`,
    );
    expect(check(join(models, 'm.gguf'), NO_GRANTS)).toMatch(/T1_ALLOW_MODEL_DIRS; it grants none\)$/);
    // A task directory grant is not a model grant.
    expect(check(join(models, 'm.gguf'), grants({ 'allow-task-dir': models }))).toMatch(/it grants none/);
  });

  it('reads s3:// from the checkpoint bucket and granted model buckets, builtin:// and hf:// always, no other scheme', () => {
    expect(check('s3://t1-checkpoints/bases/m.gguf', NO_GRANTS)).toBe('s3://t1-checkpoints/bases/m.gguf');
    expect(check('s3://weights/m.gguf')).toBe('s3://weights/m.gguf');
    expect(check('s3://other/m.gguf')).toMatch(/bucket "other" is not granted .*--allow-model-bucket or T1_ALLOW_MODEL_BUCKETS/);
    expect(check('builtin://smollm2-135m-instruct', NO_GRANTS)).toBe('builtin://smollm2-135m-instruct');
    expect(check('hf://org/name@main', NO_GRANTS)).toBe('hf://org/name@main');
    expect(check('file:///etc/passwd')).toBe(
      'model.base.uri: file:// is not a model source a config may name (a granted path, s3://, hf:// or builtin://)',
    );
    expect(check('http://169.254.169.254/latest')).toMatch(/http:\/\/ is not a model source/);
  });
});

describe('a worker', () => {
  it('logs what it grants by name, and its compute processes get neither its S3 credentials nor its grant settings', () => {
    const g = grants({ 'allow-secret': 'MY_KEY', 'allow-teacher-host': 'h:1' });
    expect(describeGrants(g, 'ckpt')).toBe(
      'secrets T1_OPENAI_API_KEY, MY_KEY; teacher hosts h:1; task dirs none; task buckets ckpt (checkpoints); model dirs none; model buckets ckpt (checkpoints)',
    );
    const env = computeEnv({
      PATH: '/bin',
      T1_S3_SECRET_ACCESS_KEY: 's',
      T1_S3_ACCESS_KEY_ID: 'i',
      T1_ALLOW_SECRETS: 'X',
      T1_S3_BUCKET: 'b',
      MY_KEY: 'k',
    });
    expect(env).toEqual({ PATH: '/bin', T1_S3_BUCKET: 'b', MY_KEY: 'k' });
  });
});
