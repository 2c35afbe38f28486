import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadGrants, type WorkerAccess } from '../../../util/grants';
import { resolveConfig } from '../../../config/presets';
import { EndpointTeacherSchema, type EndpointTeacher } from '../../../tasks/config';
import { CompletionClient, EndpointError } from '../../../tasks/openai';
import { serveCheckpoint } from '../../../external/serve';
import { initBackend } from '../../../model/backend';
import { modelConfig } from '../../../model/config';
import { datasetSpec } from '../../../rules/campaign';
import { synthesizeWithTeacher } from '../../../tasks/dataset';
import { Transformer } from '../../../model/transformer';
import {
  endpointWriter,
  judgeAnswer,
  parseTeacherText,
  teacherHash,
  TeacherEndpointError,
  type AnswerCache,
} from '../../../tasks/endpoint-teacher';
import { parseJsonlTask } from '../../../tasks/jsonl';
import { ConfigError } from '../../../util/errors';
import { Prng } from '../../../util/prng';

const problems = parseJsonlTask(
  'mini-math.jsonl',
  readFileSync(new URL('../../data/mini-math.jsonl', import.meta.url), 'utf8'),
  '0'.repeat(64),
).problems.slice(0, 6);

/** The teacher cache's contract (write once, read back) over a Map: the S3-backed one is exercised in the integration test. */
function mapCache(): AnswerCache & { entries: Map<string, unknown> } {
  const entries = new Map<string, unknown>();
  return {
    entries,
    getJson: async <T>(key: string) => entries.get(key) as T | undefined,
    putJsonOnce: async (key, value) => void (entries.has(key) || entries.set(key, value)),
  };
}

let server: Server | undefined;
afterEach(() => new Promise<void>((r) => (server ? server.close(() => r()) : r())));

/** A scripted OpenAI-compatible server: `reply(prompt, nth request for that prompt)` is the completion text. */
async function scripted(reply: (problem: string, nth: number) => string, stats = { inFlight: 0, peak: 0, requests: 0 }) {
  const seen = new Map<string, number>();
  server = createServer(async (req, res) => {
    let body = '';
    for await (const c of req) body += c;
    const { prompt } = JSON.parse(body);
    const problem = /Problem:\n(.*)\n/.exec(prompt)![1];
    const nth = (seen.get(problem) ?? 0) + 1;
    seen.set(problem, nth);
    stats.requests++;
    stats.peak = Math.max(stats.peak, ++stats.inFlight);
    await new Promise((r) => setTimeout(r, 5));
    stats.inFlight--;
    res
      .writeHead(200, { 'content-type': 'application/json' })
      .end(JSON.stringify({ choices: [{ index: 0, text: reply(problem, nth), finish_reason: 'stop' }] }));
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server!.address() as AddressInfo).port}/v1`, stats };
}

const teacher = (url: string, over: Record<string, unknown> = {}) =>
  EndpointTeacherSchema.parse({ kind: 'endpoint', url, model: 'm', tries: 3, concurrency: 2, ...over });
const client = (cfg: EndpointTeacher, apiKey = '') =>
  new CompletionClient({ endpoint: cfg.url, apiKey, maxAttempts: cfg.maxAttempts, timeoutMs: cfg.timeoutMs });
/** A worker that grants the teacher's host (loopback is never granted by default) and, if named, its key variable. */
const granting = (url: string, ...secrets: string[]): WorkerAccess => ({
  grants: loadGrants({ 'allow-teacher-host': new URL(url).host, 'allow-secret': secrets }, {}),
  checkpointBucket: 't1-checkpoints',
});

/** `What is a + b?` -> its value. */
const solve = (problem: string) => {
  const [, a, op, b] = /What is (\d+) ([+*]) (\d+)\?/.exec(problem)!;
  return op === '+' ? Number(a) + Number(b) : Number(a) * Number(b);
};

describe('teacher text', () => {
  it('reads the T1 format of the default prompt, and our own models’ answer cue', () => {
    expect(parseTeacherText('try 2+2=5\nno: 2+2 is not 5\n\ntry 2+2=4\nAnswer: 4\nchk 4-2=2 ok\nextra')).toEqual({
      reasoning: 'try 2+2=5\nno: 2+2 is not 5\ntry 2+2=4\n',
      answer: '4',
      verification: '\nchk 4-2=2 ok',
    });
    expect(parseTeacherText('Final answer: 7')).toEqual({ reasoning: '', answer: '7', verification: '' });
    expect(parseTeacherText('2 + 2 = 4<ANS>4\nchk ok<EOS>')).toEqual({ reasoning: '2 + 2 = 4\n', answer: '4', verification: '\nchk ok' });
    expect(parseTeacherText('I think it is 4.')).toBeNull();
    expect(parseTeacherText('Answer:   ')).toBeNull();
  });

  it('keeps a trace only when it is ASCII after folding, verifies and fits', () => {
    const p = problems.find((q) => q.data.answer === '35')!;
    expect(judgeAnswer(p, 'try 27 \u00d7 1 + 8 = 35\nAnswer: 35', 252)).toMatchObject({
      reasoning: 'try 27 * 1 + 8 = 35\n',
      answer: '35',
      failedAttempts: 0,
      steps: 1,
    });
    expect(judgeAnswer(p, 'try \u221a\nAnswer: 35', 252)).toBe('alphabet');
    expect(judgeAnswer(p, 'Answer: 36', 252)).toBe('wrong');
    expect(judgeAnswer(p, 'no answer', 252)).toBe('unparseable');
    expect(judgeAnswer(p, `${'try again\n'.repeat(30)}Answer: 35`, 252)).toBe('tooLong');
  });

  it('names cached answers by what shapes them, not by concurrency or tries', () => {
    const a = teacher('http://h/v1');
    expect(teacherHash({ ...a, concurrency: 9, tries: 1 })).toBe(teacherHash(a));
    expect(teacherHash({ ...a, temperature: 0.1 })).not.toBe(teacherHash(a));
  });
});

describe('endpoint teacher', () => {
  it('rejection-samples up to `tries` requests per problem, bounds requests in flight, and a rerun asks nothing it has an answer to', async () => {
    // Wrong first, right second; every third problem never answers in format.
    const { url, stats } = await scripted((problem, nth) => {
      if (problems.findIndex((p) => p.prompt === problem) % 3 === 2) return 'I would rather not say.';
      const right = solve(problem);
      return nth === 1
        ? `try ${right + 1}\nAnswer: ${right + 1}`
        : `try ${right - 1}\nno: off by one\ntry ${right}\nAnswer: ${right}\nchk ok`;
    });
    const cfg = teacher(url);
    const cache = mapCache();
    const first = endpointWriter(cfg, { access: granting(url), client: client(cfg), cache });
    const traces = await first.write(problems);
    expect(traces.map((t) => t !== null)).toEqual([true, true, false, true, true, false]);
    expect(traces[0]).toMatchObject({ answer: problems[0].data.answer, failedAttempts: 1, steps: 3, verification: '\nchk ok' });
    expect(first.stats).toMatchObject({ problems: 6, accepted: 4, acceptance: 4 / 6, answers: 14, requests: 14, cacheHits: 0 });
    expect(first.stats.rejected).toEqual({ unparseable: 6, alphabet: 0, wrong: 4, tooLong: 0 });
    expect(stats.requests).toBe(14);
    expect(stats.peak).toBeLessThanOrEqual(2);
    expect(cache.entries.size).toBe(14);

    const again = endpointWriter(cfg, { access: granting(url), client: client(cfg), cache });
    expect(await again.write(problems)).toEqual(traces);
    expect(again.stats).toMatchObject({ requests: 0, cacheHits: 14 });
    expect(stats.requests).toBe(14);
  });

  it('fails with a named, non-retryable error on a refused API key or an answer that is not an OpenAI response, never showing the key', async () => {
    const { url } = await scripted(() => 'x');
    server!.removeAllListeners('request');
    server!.on('request', (req, res) =>
      req.headers.authorization === 'Bearer sk-right'
        ? res.writeHead(200).end('<html>proxy login</html>')
        : res.writeHead(401).end('{"error":"bad key sk-wrong"}'),
    );
    const cfg = teacher(url, { apiKeyEnv: 'MY_TEACHER_KEY' });
    const access = granting(url, 'MY_TEACHER_KEY');
    const refused = await endpointWriter(cfg, { access, client: client(cfg, 'sk-wrong'), cache: mapCache() })
      .write(problems.slice(0, 1))
      .catch((e) => e);
    expect(refused).toBeInstanceOf(TeacherEndpointError);
    // A refusal's body is not shown at all: it may echo what it refused.
    expect(refused.message).toMatch(/^data\.teacher: POST .* failed: HTTP 401 \(the endpoint refused the API key in \$MY_TEACHER_KEY\)$/);
    expect(refused.message).not.toContain('bad key');
    const garbage = await endpointWriter(cfg, { access, client: client(cfg, 'sk-right'), cache: mapCache() })
      .write(problems.slice(0, 1))
      .catch((e) => e);
    expect(garbage).toBeInstanceOf(TeacherEndpointError);
    expect(garbage.message).toMatch(/answered HTTP 200 with non-JSON: <html>proxy login<\/html>/);
  });

  it('shows at most a short excerpt of a reply, control characters stripped, the key redacted before it is cut', async () => {
    const { url } = await scripted(() => 'x');
    server!.removeAllListeners('request');
    const reply = `${'a'.repeat(60)} you sent ${'\u001b[31m'}sk-long-secret-key-0123456789\r\nX-Injected: 1 ${'z'.repeat(400)}`;
    server!.on('request', (_req, res) => res.writeHead(400).end(reply));
    const cfg = teacher(url, { apiKeyEnv: 'MY_TEACHER_KEY' });
    const err = await endpointWriter(cfg, {
      access: granting(url, 'MY_TEACHER_KEY'),
      client: client(cfg, 'sk-long-secret-key-0123456789'),
      cache: mapCache(),
    })
      .write(problems.slice(0, 1))
      .catch((e) => e);
    expect(err).toBeInstanceOf(TeacherEndpointError);
    const shown = /failed: HTTP 400: (.*)$/.exec(err.message)![1];
    expect([...shown].length).toBeLessThanOrEqual(80);
    expect(shown).toBe(`${'a'.repeat(60)} you sent [31m*** X…`);
    expect(err.message).not.toMatch(/[\u0000-\u001f]/);
    expect(err.message).not.toContain('sk-long');
    expect(err.message).not.toContain('zzz');
  });

  it('leaves an unreachable endpoint to Temporal’s retries (a plain EndpointError), after its own attempts', async () => {
    const { url } = await scripted(() => 'x');
    await new Promise<void>((r) => server!.close(() => r()));
    server = undefined;
    const cfg = teacher(url, { maxAttempts: 1 });
    const err = await endpointWriter(cfg, { access: granting(url), client: client(cfg), cache: mapCache() })
      .write(problems.slice(0, 1))
      .catch((e) => e);
    expect(err).toBeInstanceOf(EndpointError);
    expect(err).not.toBeInstanceOf(TeacherEndpointError);
    expect(err.message).toMatch(/failed after 1 attempt\(s\); last: fetch failed: ECONNREFUSED/);
  });
});

describe('t1 serve as the teacher', () => {
  let model: Transformer;
  beforeAll(async () => {
    await initBackend();
    model = new Transformer(modelConfig({ contextLength: 96, dModel: 16, nLayers: 1, nHeads: 2, dFF: 32 }), new Prng(3));
  });
  afterAll(() => model?.dispose());

  it('is asked once per (problem, try) with its API key, and every answer it gives is judged', async () => {
    const served = await serveCheckpoint({ model, name: 'teacher', port: 0, apiKey: 'sk-serve' });
    try {
      const cfg = teacher(served.url, { model: 'teacher', template: '{problem}', maxTokens: 40, temperature: 1 });
      const access = granting(served.url);
      const w = endpointWriter(cfg, { access, client: client(cfg, 'sk-serve'), cache: mapCache() });
      const traces = await w.write(problems);
      expect(served.completions()).toBe(w.stats.requests);
      expect(w.stats.answers).toBe(w.stats.requests);
      expect(w.stats.answers).toBe(w.stats.accepted + Object.values(w.stats.rejected).reduce((a, b) => a + b, 0));
      expect(traces.filter(Boolean)).toHaveLength(w.stats.accepted);
      const wrongKey = await endpointWriter(cfg, { access, client: client(cfg, 'sk-other'), cache: mapCache() })
        .write(problems.slice(0, 1))
        .catch((e) => e);
      expect(wrongKey).toBeInstanceOf(TeacherEndpointError);
      expect(served.completions()).toBe(w.stats.requests);
    } finally {
      await served.close();
    }
  });
});

describe('a config asks the worker for what it does not grant (issue 30)', () => {
  const SECRET = 's3-secret-value-for-the-test-7f3a';
  let saved: string | undefined;
  beforeAll(() => {
    saved = process.env.T1_S3_SECRET_ACCESS_KEY;
    process.env.T1_S3_SECRET_ACCESS_KEY = SECRET;
    process.env.T1_TEST_GRANTED_KEY = 'granted-key-value-1234';
  });
  afterAll(() => {
    if (saved === undefined) delete process.env.T1_S3_SECRET_ACCESS_KEY;
    else process.env.T1_S3_SECRET_ACCESS_KEY = saved;
    delete process.env.T1_TEST_GRANTED_KEY;
  });

  /** A loopback listener as the teacher, counting every request it gets. */
  async function listener() {
    const got: { auth?: string }[] = [];
    server = createServer((req, res) => {
      got.push({ auth: req.headers.authorization });
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ choices: [{ index: 0, text: 'Answer: 1' }] }));
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    return { url: `http://127.0.0.1:${(server!.address() as AddressInfo).port}/v1`, got };
  }

  /** The synthesis activity's call: a campaign config's dataset spec, the worker's access, the default client. */
  const synthesize = (teacherCfg: Record<string, unknown>, access: WorkerAccess) =>
    synthesizeWithTeacher(
      datasetSpec(
        resolveConfig({
          preset: 'smoke',
          overrides: { data: { sftExamples: 4, teacher: { kind: 'endpoint', model: 'm', maxChars: 64, ...teacherCfg } } },
        }),
      ),
      { access, cache: mapCache() },
    ).then(
      () => new Error('synthesis succeeded'),
      (e: unknown) => e as Error,
    );

  it('a key variable not granted (the S3 secret): no request, a ConfigError naming data.teacher.apiKeyEnv, no secret in it', async () => {
    const { url, got } = await listener();
    const access = granting(url); // the host is granted; the variable is not
    const err = await synthesize({ url, apiKeyEnv: 'T1_S3_SECRET_ACCESS_KEY' }, access);
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toBe(
      'data.teacher.apiKeyEnv: "T1_S3_SECRET_ACCESS_KEY" is not granted to this worker (the worker’s own S3 credentials are never granted)',
    );
    const other = await synthesize({ url, apiKeyEnv: 'HOME_SECRET' }, access);
    expect(other.message).toBe(
      'data.teacher.apiKeyEnv: "HOME_SECRET" is not granted to this worker (grant it with --allow-secret or T1_ALLOW_SECRETS)',
    );
    // Even a prefix pattern that covers it does not grant the worker's own credentials.
    const wide = await synthesize({ url, apiKeyEnv: 'T1_S3_SECRET_ACCESS_KEY' }, granting(url, 'T1_*'));
    expect(wide).toBeInstanceOf(ConfigError);
    expect(got).toHaveLength(0);
    for (const e of [err, other, wide]) expect(`${e.message}\n${e.stack}`).not.toContain(SECRET);
  });

  it('a granted key variable but a host not granted (loopback is not granted by default): no request, data.teacher.url named', async () => {
    const { url, got } = await listener();
    const noHost: WorkerAccess = { grants: loadGrants({ 'allow-secret': 'T1_TEST_GRANTED_KEY' }, {}), checkpointBucket: 't1-checkpoints' };
    const err = await synthesize({ url, apiKeyEnv: 'T1_TEST_GRANTED_KEY' }, noHost);
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toBe(
      `data.teacher.url: host ${new URL(url).host} is not granted to this worker (grant it with --allow-teacher-host or T1_ALLOW_TEACHER_HOSTS)`,
    );
    // Another port on the granted address is another host.
    const port = Number(new URL(url).port);
    const otherPort = await synthesize(
      { url, apiKeyEnv: 'T1_TEST_GRANTED_KEY' },
      { ...noHost, grants: loadGrants({ 'allow-secret': 'T1_TEST_GRANTED_KEY', 'allow-teacher-host': `127.0.0.1:${port + 1}` }, {}) },
    );
    expect(otherPort).toBeInstanceOf(ConfigError);
    // The default key variable is granted, the host still is not.
    expect((await synthesize({ url }, noHost)).message).toMatch(/^data\.teacher\.url: host /);
    expect(got).toHaveLength(0);
    expect(err.message).not.toContain('granted-key-value-1234');
  });

  it('both granted: the teacher is asked, with the granted key', async () => {
    const { url, got } = await listener();
    await synthesize({ url, apiKeyEnv: 'T1_TEST_GRANTED_KEY', tries: 1, concurrency: 1 }, granting(url, 'T1_TEST_*'));
    expect(got.length).toBeGreaterThan(0);
    expect(got[0].auth).toBe('Bearer granted-key-value-1234');
  });

  it('a granted host cannot redirect the request (and its key) to one that is not', async () => {
    const { url: target, got } = await listener();
    const target2 = server!;
    const hop = createServer((_req, res) => res.writeHead(307, { location: `${target}/completions` }).end());
    await new Promise<void>((r) => hop.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(hop.address() as AddressInfo).port}/v1`;
      const err = await synthesize({ url, apiKeyEnv: 'T1_TEST_GRANTED_KEY', maxAttempts: 1 }, granting(url, 'T1_TEST_GRANTED_KEY'));
      expect(err).toBeInstanceOf(TeacherEndpointError);
      expect(err.message).toMatch(/failed: HTTP 307/);
      expect(got).toHaveLength(0);
    } finally {
      hop.closeAllConnections();
      await new Promise<void>((r) => hop.close(() => r()));
      server = target2;
    }
  });
});
