/**
 * Issue 30's acceptance test on the worker's own path: a compute process forked by the worker's
 * pool, given the worker's grants, runs the synthesis and pinTask activities of a config that asks
 * for what the worker does not grant. The teacher listener receives no request, the failure is a
 * non-retryable ConfigError naming the field, and no secret's value is in it.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApplicationFailure } from '@temporalio/activity';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Activities } from '../../../activities';
import { CampaignConfigSchema, type CampaignConfig } from '../../../config/campaign';
import { loadGrants } from '../../../util/grants';
import { resolveConfig } from '../../../config/presets';
import { ComputePool } from '../../../workers/compute';

const SECRET = 's3-secret-value-for-the-worker-test-91c2';
const GRANTED = 'granted-teacher-key-value-55';
const dir = mkdtempSync(join(tmpdir(), 't1-worker-grants-'));
const tasks = join(dir, 'tasks');
let pool: ComputePool;
let activities: Activities;
let teacher: Server;
let teacherUrl: string;
const requests: string[] = [];
const saved = { secret: process.env.T1_S3_SECRET_ACCESS_KEY };

beforeAll(async () => {
  process.env.T1_S3_SECRET_ACCESS_KEY = SECRET;
  process.env.T1_TEST_WORKER_KEY = GRANTED;
  teacher = createServer((req, res) => {
    requests.push(`${req.method} ${req.url} ${req.headers.authorization ?? ''}`);
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"choices":[{"index":0,"text":"Answer: 1"}]}');
  });
  await new Promise<void>((r) => teacher.listen(0, '127.0.0.1', r));
  teacherUrl = `http://127.0.0.1:${(teacher.address() as AddressInfo).port}/v1`;
  // The worker grants a key variable and a task directory, but no teacher host.
  const grants = loadGrants({ 'allow-secret': 'T1_TEST_WORKER_KEY', 'allow-task-dir': tasks }, {});
  pool = new ComputePool(
    {
      s3: {
        endpoint: 'http://127.0.0.1:9',
        bucket: 't1-checkpoints',
        region: 'us-east-1',
        accessKeyId: 'id',
        secretAccessKey: SECRET,
        forcePathStyle: true,
      },
      temporal: { address: '127.0.0.1:9', namespace: 'default', uiUrl: 'http://127.0.0.1:9', tls: { enabled: false } },
    },
    grants,
  );
  activities = (await pool.start()).activities;
}, 120_000);

afterAll(async () => {
  pool?.close();
  await new Promise((r) => teacher?.close(r));
  rmSync(dir, { recursive: true, force: true });
  if (saved.secret === undefined) delete process.env.T1_S3_SECRET_ACCESS_KEY;
  else process.env.T1_S3_SECRET_ACCESS_KEY = saved.secret;
  delete process.env.T1_TEST_WORKER_KEY;
});

const withTeacher = (teacherCfg: Record<string, unknown>): CampaignConfig =>
  resolveConfig({
    preset: 'smoke',
    overrides: { data: { sftExamples: 4, teacher: { kind: 'endpoint', url: teacherUrl, model: 'm', maxChars: 64, ...teacherCfg } } },
  });

/** An activity run as the worker runs it: in a compute process, through the pool, in an activity context. */
async function failure(run: () => Promise<unknown>): Promise<ApplicationFailure> {
  const err = await new MockActivityEnvironment(undefined, { logger: new DefaultLogger('ERROR') }).run(run).then(
    () => new Error('the activity succeeded'),
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ApplicationFailure);
  const f = err as ApplicationFailure;
  expect(`${f.message}\n${f.stack}`).not.toContain(SECRET);
  expect(`${f.message}\n${f.stack}`).not.toContain(GRANTED);
  return f;
}

describe('a worker refuses what a campaign config asks and its grants do not give', () => {
  it('a teacher key variable not granted (the S3 secret): the listener gets no request; ConfigError, not retried, field named', async () => {
    const f = await failure(() =>
      activities.synthesize({ campaignId: 'c', config: withTeacher({ apiKeyEnv: 'T1_S3_SECRET_ACCESS_KEY' }) }),
    );
    expect([f.type, f.nonRetryable]).toEqual(['ConfigError', true]);
    expect(f.message).toMatch(/^data\.teacher\.apiKeyEnv: "T1_S3_SECRET_ACCESS_KEY" is not granted to this worker/);
    const g = await failure(() => activities.synthesize({ campaignId: 'c', config: withTeacher({ apiKeyEnv: 'HOME' }) }));
    expect(g.message).toMatch(/^data\.teacher\.apiKeyEnv: "HOME" is not granted to this worker \(grant it with --allow-secret/);
    expect(requests).toEqual([]);
  });

  it('a granted key variable, but a host not granted (loopback is not granted by default): no request; data.teacher.url named', async () => {
    const f = await failure(() => activities.synthesize({ campaignId: 'c', config: withTeacher({ apiKeyEnv: 'T1_TEST_WORKER_KEY' }) }));
    expect([f.type, f.nonRetryable]).toEqual(['ConfigError', true]);
    expect(f.message).toBe(
      `data.teacher.url: host ${new URL(teacherUrl).host} is not granted to this worker (grant it with --allow-teacher-host or T1_ALLOW_TEACHER_HOSTS)`,
    );
    expect(requests).toEqual([]);
  });

  it('a local task file outside the granted directories (pinTask, for a scheduled campaign): refused before it is read, task.file named', async () => {
    const outside = join(dir, 'outside.jsonl');
    writeFileSync(outside, '{"problem": "What is 1 + 1?", "answer": "2"}\n');
    const config = CampaignConfigSchema.parse({ task: { name: 'jsonl', file: outside } });
    const f = await failure(() => activities.pinTask({ config }));
    expect([f.type, f.nonRetryable]).toEqual(['ConfigError', true]);
    expect(f.message).toBe(
      `task.file: ${outside} is not an existing file under a task directory granted to this worker (grant one with --allow-task-dir or T1_ALLOW_TASK_DIRS)`,
    );
    const f2 = await failure(() => activities.pinTask({ config: { ...config, task: { ...config.task, file: '/etc/passwd' } } }));
    expect(f2.message).toMatch(/^task\.file: \/etc\/passwd is not an existing file under a task directory granted/);
    const f3 = await failure(() =>
      activities.pinTask({ config: { ...config, task: { ...config.task, file: 's3://another-bucket/p.jsonl' } } }),
    );
    expect(f3.message).toMatch(/^task\.file: bucket "another-bucket" is not granted to this worker/);
  });

  it('a granted task file with a bad line: the error names the line and the field, never the line’s content', async () => {
    mkdirSync(tasks, { recursive: true });
    const file = join(tasks, 'bad.jsonl');
    writeFileSync(
      file,
      '{"problem": "What is 1 + 1?", "answer": "2"}\nPRIVATE-LINE-CONTENT\n{"problem": "PRIVATE-PROBLEM", "answer": true}\n',
    );
    const config = CampaignConfigSchema.parse({ task: { name: 'jsonl', file } });
    const f = await failure(() => activities.pinTask({ config }));
    expect([f.type, f.nonRetryable]).toEqual(['TaskFileError', true]);
    expect(f.message).toBe(`${file}: 2 bad line(s)\n${file}:2: not JSON\n${file}:3: answer: must be a string or a number`);
    expect(f.message).not.toContain('PRIVATE');
  });
});
