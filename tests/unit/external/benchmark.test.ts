import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { evaluateEndpoint, parseBenchmark } from '../../../external/benchmark';
import { CompletionClient } from '../../../tasks/openai';

let server: Server | undefined;
afterAll(async () => {
  server?.closeAllConnections();
  await new Promise((r) => (server ? server.close(r) : r(undefined)));
});

describe('JSONL benchmarks', () => {
  it('parses problem/question/prompt lines, skips blank lines, defaults ids to line numbers', () => {
    const text = '{"problem":"a","answer":"1"}\n\n{"question":"b","answer":2,"id":7}\n{"prompt":"c","answer":"3"}\n';
    expect(parseBenchmark(text)).toEqual([
      { id: '1', problem: 'a', answer: '1' },
      { id: '7', problem: 'b', answer: '2' },
      { id: '4', problem: 'c', answer: '3' },
    ]);
  });

  it('names the file, line and field of a bad line', () => {
    expect(() => parseBenchmark('{"problem":"a","answer":"1"}\n{"problem":"b"}', 'f.jsonl')).toThrow(
      /^f\.jsonl: 1 bad line\(s\)\nf\.jsonl:2: answer: required$/,
    );
    expect(() => parseBenchmark('{"answer":"1"}', 'f.jsonl')).toThrow(/\nf\.jsonl:1: problem: needs one of/);
    expect(() => parseBenchmark('{"problem":"a","answer":"1"}\n{oops', 'f.jsonl')).toThrow(/\nf\.jsonl:2: not JSON/);
    expect(() => parseBenchmark('{"problem":"a","answer":"1","id":"x"}\n{"problem":"b","answer":"1","id":"x"}', 'f.jsonl')).toThrow(
      /f\.jsonl:2: id "x" already used on line 1/,
    );
    expect(() => parseBenchmark('\n', 'f.jsonl')).toThrow(/no problems/);
  });

  it('scores samples, computes accuracy (first sample) and pass@1 (all samples), and bounds requests in flight', async () => {
    let inFlight = 0;
    let peak = 0;
    // Problem k answers \boxed{k} on its first k of 4 samples, wrong after; each reply waits 20 ms.
    server = createServer(async (req, res) => {
      let text = '';
      for await (const c of req) text += c;
      const { prompt, n } = JSON.parse(text);
      peak = Math.max(peak, ++inFlight);
      await new Promise((r) => setTimeout(r, 20));
      inFlight--;
      const k = Number(prompt.match(/Q(\d)/)[1]);
      const choices = Array.from({ length: n }, (_, i) => ({ index: i, text: `so \\boxed{${i < k ? k : k + 1}}`, finish_reason: 'stop' }));
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ choices }));
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    const problems = [0, 1, 2, 3, 4, 0].map((k, i) => ({ id: String(i), problem: `Q${k}`, answer: String(k) }));
    const r = await evaluateEndpoint({
      client: new CompletionClient({ endpoint: `http://127.0.0.1:${(server!.address() as AddressInfo).port}` }),
      model: 'fake',
      problems,
      samples: 4,
      concurrency: 2,
      maxTokens: 16,
      temperature: 1,
      template: 'Solve: {problem}',
    });
    expect(peak).toBe(2);
    expect(r.records.map((x) => x.passAt1)).toEqual([0, 0.25, 0.5, 0.75, 1, 0]);
    expect(r.accuracy).toBeCloseTo(4 / 6, 12);
    expect(r.passAt1).toBeCloseTo(2.5 / 6, 12);
    expect(r.records[1].samples[0]).toEqual({ text: 'so \\boxed{1}', finishReason: 'stop', extracted: '1', correct: true });
  });
});
