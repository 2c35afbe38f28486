import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EndpointTeacher } from '../../../config/task';
import { CompletionClient, EndpointError } from '../../../external/openai';
import { serveCheckpoint } from '../../../external/serve';
import { initBackend } from '../../../model/backend';
import { modelConfig } from '../../../model/config';
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
  EndpointTeacher.parse({ kind: 'endpoint', url, model: 'm', tries: 3, concurrency: 2, ...over });
const client = (cfg: EndpointTeacher, apiKey = '') =>
  new CompletionClient({ endpoint: cfg.url, apiKey, maxAttempts: cfg.maxAttempts, timeoutMs: cfg.timeoutMs });

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
    const first = endpointWriter(cfg, { client: client(cfg), cache });
    const traces = await first.write(problems);
    expect(traces.map((t) => t !== null)).toEqual([true, true, false, true, true, false]);
    expect(traces[0]).toMatchObject({ answer: problems[0].data.answer, failedAttempts: 1, steps: 3, verification: '\nchk ok' });
    expect(first.stats).toMatchObject({ problems: 6, accepted: 4, acceptance: 4 / 6, answers: 14, requests: 14, cacheHits: 0 });
    expect(first.stats.rejected).toEqual({ unparseable: 6, alphabet: 0, wrong: 4, tooLong: 0 });
    expect(stats.requests).toBe(14);
    expect(stats.peak).toBeLessThanOrEqual(2);
    expect(cache.entries.size).toBe(14);

    const again = endpointWriter(cfg, { client: client(cfg), cache });
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
    const refused = await endpointWriter(cfg, { client: client(cfg, 'sk-wrong'), cache: mapCache() })
      .write(problems.slice(0, 1))
      .catch((e) => e);
    expect(refused).toBeInstanceOf(TeacherEndpointError);
    expect(refused.message).toMatch(
      /^data\.teacher: POST .* failed: HTTP 401: .* \(the endpoint refused the API key in \$MY_TEACHER_KEY\)$/,
    );
    expect(refused.message).not.toContain('sk-wrong');
    const garbage = await endpointWriter(cfg, { client: client(cfg, 'sk-right'), cache: mapCache() })
      .write(problems.slice(0, 1))
      .catch((e) => e);
    expect(garbage).toBeInstanceOf(TeacherEndpointError);
    expect(garbage.message).toMatch(/answered HTTP 200 with non-JSON: <html>proxy login<\/html>/);
  });

  it('leaves an unreachable endpoint to Temporal’s retries (a plain EndpointError), after its own attempts', async () => {
    const { url } = await scripted(() => 'x');
    await new Promise<void>((r) => server!.close(() => r()));
    server = undefined;
    const cfg = teacher(url, { maxAttempts: 1 });
    const err = await endpointWriter(cfg, { client: client(cfg), cache: mapCache() })
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
    await initBackend('wasm');
    model = new Transformer(modelConfig({ contextLength: 96, dModel: 16, nLayers: 1, nHeads: 2, dFF: 32 }), new Prng(3));
  });
  afterAll(() => model?.dispose());

  it('is asked once per (problem, try) with its API key, and every answer it gives is judged', async () => {
    const served = await serveCheckpoint({ model, name: 'teacher', port: 0, apiKey: 'sk-serve' });
    try {
      const cfg = teacher(served.url, { model: 'teacher', template: '{problem}', maxTokens: 40, temperature: 1 });
      const w = endpointWriter(cfg, { client: client(cfg, 'sk-serve'), cache: mapCache() });
      const traces = await w.write(problems);
      expect(served.completions()).toBe(w.stats.requests);
      expect(w.stats.answers).toBe(w.stats.requests);
      expect(w.stats.answers).toBe(w.stats.accepted + Object.values(w.stats.rejected).reduce((a, b) => a + b, 0));
      expect(traces.filter(Boolean)).toHaveLength(w.stats.accepted);
      const wrongKey = await endpointWriter(cfg, { client: client(cfg, 'sk-other'), cache: mapCache() })
        .write(problems.slice(0, 1))
        .catch((e) => e);
      expect(wrongKey).toBeInstanceOf(TeacherEndpointError);
      expect(served.completions()).toBe(w.stats.requests);
    } finally {
      await served.close();
    }
  });
});
