/**
 * A campaign on the user's own problems: the project's JSONL file read from S3, SFT traces from
 * the lines' worked solutions and, for lines without one, from an LLM teacher — here `t1 serve`
 * (a real OpenAI-compatible server on loopback) serving a model trained on the file's solutions.
 * The worker is killed mid-synthesis; the retried synthesis asks nothing it has an answer to.
 */
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { WorkflowFailedError, type Client } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { campaignHandle, startCampaign } from '../../client/campaigns';
import type { CampaignConfig } from '../../config/campaign';
import { USER_ACCESS } from '../../util/grants';
import { resolveConfig } from '../../config/presets';
import { serveCheckpoint, type ServedModel } from '../../external/serve';
import { connectClient } from '../../infra/temporal';
import { initBackend } from '../../model/backend';
import { modelConfig } from '../../model/config';
import { buildExample } from '../../model/tokenizer';
import { CheckpointStore } from '../../storage/checkpoints';
import type { SftExample } from '../../tasks/dataset';
import { TEACHER_CACHE_PREFIX, teacherHash, type TeacherStats } from '../../tasks/endpoint-teacher';
import { jsonlVerifier, parseJsonlTask, solutionTrace } from '../../tasks/jsonl';
import { pinTaskFile } from '../../config/task-file';
import { SftTrainer } from '../../training/sft';
import { SftConfigSchema } from '../../training/sft-config';
import { killHard, spawnWorker, t1, t1Env, testConnection, uniqueCampaign, waitFor } from './helpers';

const conn = testConnection();
const store = new CheckpointStore(conn.s3);
const FILE = new URL('../data/mini-math.jsonl', import.meta.url);
const body = readFileSync(FILE, 'utf8');
const KEY_ENV = 'T1_TEST_TEACHER_KEY';
const KEY = 'sk-teacher-test-0123';

let client: Client;
let served: ServedModel;
let slow: Server;
let teacherUrl: string;
let fileUri: string;

/** What the workers grant, explicitly: the teacher's key variable and its loopback host (never granted by default). The file is in the checkpoint bucket, always granted. */
const grants = () => ({ T1_ALLOW_SECRETS: KEY_ENV, T1_ALLOW_TEACHER_HOSTS: new URL(teacherUrl).host });

/** Every request to the teacher takes at least 150 ms more, so a kill lands mid-synthesis. */
function slowProxy(target: string): Promise<Server> {
  const to = new URL(target);
  const server = createServer((req, res) => {
    setTimeout(() => {
      const up = request({ host: to.hostname, port: to.port, path: req.url, method: req.method, headers: req.headers }, (r) => {
        res.writeHead(r.statusCode!, r.headers);
        r.pipe(res);
      });
      // A killed worker drops its connection mid-request: end the upstream one with it.
      up.on('error', () => res.destroy());
      res.on('close', () => up.destroy());
      req.pipe(up);
    }, 150);
  });
  return new Promise((r) => server.listen(0, '127.0.0.1', () => r(server)));
}

beforeAll(async () => {
  client = await connectClient(conn.temporal);
  fileUri = `s3://${conn.s3.bucket}/inputs/${uniqueCampaign('mini-math')}.jsonl`;
  await store.client.send(new PutObjectCommand({ Bucket: conn.s3.bucket, Key: fileUri.split('/').slice(3).join('/'), Body: body }));
  // The teacher: a small model trained on the file's worked solutions, behind `t1 serve`'s server.
  await initBackend();
  const problems = parseJsonlTask('mini-math', body, '0'.repeat(64)).problems.filter((p) => p.data.solution !== undefined);
  const trainer = SftTrainer.create(
    modelConfig({ contextLength: 64, dModel: 64, nLayers: 2, nHeads: 2, dFF: 128 }),
    SftConfigSchema.parse({ steps: 300, batchSize: 32, lr: 3e-3, warmupSteps: 10 }),
    problems.map((p) => buildExample({ prompt: p.prompt, ...solutionTrace(p)! })),
    1,
  );
  for (let i = 0; i < 300; i++) trainer.trainStep();
  served = await serveCheckpoint({ model: trainer.model, name: 'teacher', port: 0, apiKey: KEY });
  slow = await slowProxy(served.url);
  teacherUrl = `http://127.0.0.1:${(slow.address() as AddressInfo).port}/v1`;
}, 240_000);

afterAll(async () => {
  await client?.connection.close();
  await new Promise((r) => slow?.close(r));
  await served?.close();
  store.close();
});

function config(over: Record<string, unknown> = {}): CampaignConfig {
  return resolveConfig({
    preset: 'smoke',
    overrides: {
      task: { name: 'jsonl', file: fileUri },
      data: {
        sftExamples: 60,
        valProblems: 8,
        teacher: {
          kind: 'endpoint',
          url: teacherUrl,
          model: 'teacher',
          template: '{problem}',
          tries: 3,
          concurrency: 1,
          maxTokens: 40,
          apiKeyEnv: KEY_ENV,
        },
      },
      model: { contextLength: 96 },
      eval: { problems: 24 },
      ...over,
    },
  });
}

async function cachedAnswers(cfg: CampaignConfig): Promise<number> {
  if (cfg.data.teacher.kind !== 'endpoint') throw new Error('endpoint teacher expected');
  const prefix = `${TEACHER_CACHE_PREFIX}/${teacherHash(cfg.data.teacher)}/`;
  let n = 0;
  let token: string | undefined;
  do {
    const r = await store.client.send(new ListObjectsV2Command({ Bucket: conn.s3.bucket, Prefix: prefix, ContinuationToken: token }));
    n += r.KeyCount ?? 0;
    token = r.NextContinuationToken;
  } while (token);
  return n;
}

describe('a campaign on a JSONL file with an endpoint teacher (real Temporal, S3 and t1 serve)', () => {
  it('runs end to end; killed mid-synthesis, the retry re-asks nothing already answered; traces come from solutions and verified teacher answers', async () => {
    const cfg = await pinTaskFile(config(), USER_ACCESS, store.client);
    expect(cfg.task.sha256).toMatch(/^[0-9a-f]{64}$/);
    const id = uniqueCampaign('jsonl');
    let worker = spawnWorker('all', { [KEY_ENV]: KEY, ...grants() });
    try {
      const h = await startCampaign(client, { campaignId: id, config: cfg, preset: 'smoke' });
      await waitFor('a few teacher answers cached', async () => (await cachedAnswers(cfg)) >= 4, 120_000, 50);
      await killHard(worker);
      // A cache write the dead worker had fully sent may still land: let S3 settle before counting.
      await new Promise((r) => setTimeout(r, 1000));
      const cachedAtKill = await cachedAnswers(cfg);
      const askedAtKill = served.completions();
      worker = spawnWorker('all', { [KEY_ENV]: KEY, ...grants() });
      const result = await h.result();
      expect(result.status).toBe('completed');
      for (const r of [result.results.sft, result.results.final]) {
        expect(r.accuracy).toBeGreaterThanOrEqual(0);
        expect(r.accuracy).toBeLessThanOrEqual(1);
      }

      const dataset = await store.load(`${id}/dataset`);
      const teacher = dataset.manifest.meta.teacher as TeacherStats;
      const cachedAfter = await cachedAnswers(cfg);
      console.log(
        `[jsonl] teacher: ${teacher.accepted}/${teacher.problems} problems accepted (${(100 * teacher.acceptance).toFixed(1)}%), ` +
          `${teacher.answers} answers judged; after the kill: ${teacher.cacheHits} cache hits, ${teacher.requests} requests; ` +
          `${cachedAtKill} answers cached at the kill, ${cachedAfter} in all; t1 serve answered ${served.completions()} requests`,
      );
      // The retried synthesis read every answer cached before the kill and asked only for the rest.
      expect(teacher.cacheHits).toBe(cachedAtKill);
      expect(teacher.requests).toBe(cachedAfter - cachedAtKill);
      // t1 serve answered each cached request once, plus at most the one in flight when the worker died.
      expect(served.completions() - askedAtKill).toBeLessThanOrEqual(teacher.requests + 1);
      expect(served.completions()).toBeLessThanOrEqual(cachedAfter + 1);
      expect(teacher.accepted).toBeGreaterThan(0);
      expect(teacher.accepted).toBeLessThan(teacher.problems);

      const problems = new Map(parseJsonlTask('f', body, '0'.repeat(64)).problems.map((p) => [p.id, p]));
      const examples = Buffer.from(dataset.objects['sft.jsonl'])
        .toString('utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as SftExample);
      expect(examples).toHaveLength(60);
      const fromSolutions = examples.filter((e) => problems.get(e.id)!.data.solution !== undefined);
      expect(dataset.manifest.meta.fromSolutions).toBe(fromSolutions.length);
      expect(fromSolutions.length + teacher.accepted).toBe(60);
      for (const e of examples) {
        const p = problems.get(e.id)!;
        expect(jsonlVerifier.verify(p, e.answer)).toBe(true);
        if (p.data.solution !== undefined) expect(e.reasoning).toBe(`${p.data.solution}\n`);
      }
      expect(JSON.stringify(await campaignHandle(client, id).fetchHistory())).not.toContain(KEY);

      // `t1 synthesize` with the campaign's config prepares the same data from the cache alone.
      const dir = mkdtempSync(join(tmpdir(), 't1-synth-'));
      try {
        writeFileSync(join(dir, 'cfg.json'), JSON.stringify(cfg));
        const askedBefore = served.completions();
        const out = `s3://${conn.s3.bucket}/prepared/${id}.jsonl`;
        const r = await t1Env({ [KEY_ENV]: KEY }, 'synthesize', '--config', join(dir, 'cfg.json'), '--out', out, '--json');
        expect(r.code, r.stderr).toBe(0);
        expect(JSON.parse(r.stdout)).toMatchObject({
          out,
          examples: 60,
          teacher: { requests: 0, cacheHits: teacher.answers, accepted: teacher.accepted },
        });
        expect(served.completions()).toBe(askedBefore);
        const prepared = await store.client.send(new GetObjectCommand({ Bucket: conn.s3.bucket, Key: `prepared/${id}.jsonl` }));
        expect(await prepared.Body!.transformToString()).toBe(Buffer.from(dataset.objects['sft.jsonl']).toString('utf8'));
        const again = await t1Env({ [KEY_ENV]: KEY }, 'synthesize', '--config', join(dir, 'cfg.json'), '--out', out);
        expect(again.code).toBe(1);
        expect(again.stderr).toContain(`--out: ${out} exists; objects are never overwritten`);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    } finally {
      await killHard(worker);
    }
  }, 600_000);

  it('a refused API key fails the campaign at once with a named error, and no dataset is committed', async () => {
    const id = uniqueCampaign('jsonl-key');
    const worker = spawnWorker('all', { [KEY_ENV]: 'sk-wrong-key-999', ...grants() });
    try {
      // Another temperature: answers cached by the first test are not this teacher's, so it must ask.
      const base = config();
      const cfg = await pinTaskFile(
        { ...base, data: { ...base.data, teacher: { ...base.data.teacher, temperature: 0.9 } as typeof base.data.teacher } },
        USER_ACCESS,
        store.client,
      );
      const failure = await (await startCampaign(client, { campaignId: id, config: cfg, preset: 'smoke' })).result().catch((e) => e);
      expect(failure).toBeInstanceOf(WorkflowFailedError);
      const cause = (failure as WorkflowFailedError).cause?.cause as Error & { type?: string };
      expect(cause.type).toBe('TeacherEndpointError');
      expect(cause.message).toMatch(/HTTP 401.*refused the API key in \$T1_TEST_TEACHER_KEY/);
      expect(cause.message).not.toContain('sk-wrong-key-999');
      expect(await store.manifest(`${id}/dataset`)).toBeUndefined();
    } finally {
      await killHard(worker);
    }
  }, 120_000);

  it('a worker that does not grant the teacher’s host fails the campaign at once, naming data.teacher.url; the teacher is asked nothing', async () => {
    const id = uniqueCampaign('jsonl-grant');
    const worker = spawnWorker('all', { [KEY_ENV]: KEY, T1_ALLOW_SECRETS: KEY_ENV, T1_ALLOW_TEACHER_HOSTS: '' });
    try {
      const base = config();
      const cfg = await pinTaskFile(
        { ...base, data: { ...base.data, teacher: { ...base.data.teacher, temperature: 0.8 } as typeof base.data.teacher } },
        USER_ACCESS,
        store.client,
      );
      const asked = served.completions();
      const failure = await (await startCampaign(client, { campaignId: id, config: cfg, preset: 'smoke' })).result().catch((e) => e);
      expect(failure).toBeInstanceOf(WorkflowFailedError);
      const cause = (failure as WorkflowFailedError).cause?.cause as Error & { type?: string };
      expect(cause.type).toBe('ConfigError');
      expect(cause.message).toBe(
        `data.teacher.url: host ${new URL(teacherUrl).host} is not granted to this worker (grant it with --allow-teacher-host or T1_ALLOW_TEACHER_HOSTS)`,
      );
      expect(served.completions()).toBe(asked);
      expect(worker.output()).toContain(`[worker] grants: secrets T1_OPENAI_API_KEY, ${KEY_ENV}; teacher hosts none;`);
      expect(JSON.stringify(await campaignHandle(client, id).fetchHistory())).not.toContain(KEY);
    } finally {
      await killHard(worker);
    }
  }, 120_000);

  it('campaign start refuses a file with bad lines before starting anything, naming each line and field', async () => {
    const dir = mkdtempSync(join(tmpdir(), 't1-jsonl-'));
    try {
      const file = join(dir, 'bad.jsonl');
      writeFileSync(
        file,
        `${body.split('\n').slice(0, 50).join('\n')}\n{"problem": "What is 2 + 2?"}\n{"problem": "What is 2\\u0007 + 2?", "answer": "4"}\n`,
      );
      writeFileSync(join(dir, 'cfg.json'), JSON.stringify({ task: { name: 'jsonl', file } }));
      const r = await t1('campaign', 'start', '--config', join(dir, 'cfg.json'), '--id', uniqueCampaign('bad-file'), '--json');
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(
        `${file}: 2 bad line(s)\n${file}:51: answer: required\n${file}:52: problem: character "\\u0007" (U+0007) is a control or unassigned character`,
      );
      expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
      expect(r.stdout).toBe('');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
