import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { evaluateEndpoint, loadBenchmark } from '../../../external/benchmark';
import { CompletionClient } from '../../../tasks/openai';
import { serveCheckpoint, type ServedModel } from '../../../external/serve';
import { loadPretrained } from '../../../formats/pretrained';
import { initBackend } from '../../../model/backend';
import { Llama } from '../../../model/llama';
import { llamaDecodable } from '../../../model/llama-decode';
import { generate } from '../../../model/sample';
import { modelConfig } from '../../../model/config';
import { Transformer } from '../../../model/transformer';
import { Prng } from '../../../util/prng';

let model: Transformer;
let served: ServedModel;
let dir: string;

beforeAll(async () => {
  await initBackend();
  model = new Transformer(modelConfig({ contextLength: 64, dModel: 16, nLayers: 1, nHeads: 2, dFF: 32 }), new Prng(1));
  served = await serveCheckpoint({ model, name: 'tiny', port: 0 });
  dir = await mkdtemp(join(tmpdir(), 't1-serve-'));
});

afterAll(async () => {
  await served?.close();
  model?.dispose();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const post = (body: unknown) =>
  fetch(`${served.url}/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });

describe('t1 serve as an OpenAI-compatible endpoint', () => {
  it('lists its model', async () => {
    const r = await fetch(`${served.url}/models`);
    expect(r.status).toBe(200);
    expect(((await r.json()) as any).data).toEqual([expect.objectContaining({ id: 'tiny', object: 'model' })]);
  });

  it('is evaluated over HTTP on a JSONL benchmark: every problem scored, n samples each', async () => {
    const file = join(dir, 'bench.jsonl');
    const lines = [
      { problem: '1+2=', answer: '3' },
      { question: '2*3=', answer: 6, id: 'q2' },
      { prompt: '9-4=', answer: '5' },
      { problem: '7+1=', answer: '8' },
    ];
    await writeFile(file, lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
    const progress: number[] = [];
    const r = await evaluateEndpoint({
      client: new CompletionClient({ endpoint: served.url }),
      model: 'tiny',
      problems: await loadBenchmark(file),
      samples: 2,
      concurrency: 3,
      maxTokens: 8,
      temperature: 1,
      onProgress: (p) => progress.push(p.done),
    });
    expect(r).toMatchObject({ model: 'tiny', endpoint: `${served.url}/completions`, problems: 4, samples: 2 });
    expect(r.records.map((x) => x.id)).toEqual(['1', 'q2', '3', '4']);
    for (const rec of r.records) {
      expect(rec.samples).toHaveLength(2);
      for (const s of rec.samples) {
        expect(typeof s.text).toBe('string');
        expect(['stop', 'length']).toContain(s.finishReason);
        expect(typeof s.correct).toBe('boolean');
      }
    }
    expect(progress).toEqual([1, 2, 3, 4]);
    expect(r.accuracy).toBeGreaterThanOrEqual(0);
    expect(r.accuracy).toBeLessThanOrEqual(1);
    expect(r.passAt1).toBeCloseTo(r.records.reduce((s, x) => s + x.passAt1, 0) / 4, 12);
  });

  it('replays a request with the same seed exactly; greedy ignores the seed', async () => {
    const texts = async (body: object) =>
      ((await (await post({ model: 'tiny', prompt: '1+2=', max_tokens: 12, n: 3, ...body })).json()) as any).choices.map(
        (c: any) => c.text,
      );
    expect(await texts({ seed: 7 })).toEqual(await texts({ seed: 7 }));
    expect(await texts({ temperature: 0, seed: 1 })).toEqual(await texts({ temperature: 0, seed: 2 }));
  });

  it('answers in the OpenAI completion shape', async () => {
    const r = await post({ model: 'tiny', prompt: '1+2=', max_tokens: 5, n: 2, temperature: 0.7 });
    expect(r.status).toBe(200);
    const body = (await r.json()) as any;
    expect(body).toMatchObject({ object: 'text_completion', model: 'tiny', usage: { prompt_tokens: 6 } });
    expect(body.id).toMatch(/^cmpl-/);
    expect(body.choices.map((c: any) => c.index)).toEqual([0, 1]);
    for (const c of body.choices) if (c.finish_reason === 'length') expect(c.text.replace(/<[A-Z]+>/g, '.').length).toBe(5);
  });

  it('rejects bad requests with 400 (404 for another model) and a JSON error naming the field', async () => {
    const cases: [unknown, number, string | null][] = [
      [{ model: 'tiny', prompt: '1+2=', max_tokens: -1 }, 400, 'max_tokens'],
      [{ model: 'tiny', prompt: '1+2=', n: 'two' }, 400, 'n'],
      [{ model: 'tiny', max_tokens: 4 }, 400, 'prompt'],
      [{ model: 'tiny', prompt: 'caf\u00e9' }, 400, 'prompt'],
      [{ model: 'tiny', prompt: 'x'.repeat(63) }, 400, 'prompt'],
      [{ model: 'tiny', prompt: '1', stream: true }, 400, 'stream'],
      [{ model: 'other', prompt: '1' }, 404, 'model'],
      ['{not json', 400, null],
    ];
    for (const [body, status, param] of cases) {
      const r = await post(body);
      expect(r.status, JSON.stringify(body)).toBe(status);
      const err = ((await r.json()) as any).error;
      expect(err.param, JSON.stringify(body)).toBe(param);
      expect(err.message).toContain(param ?? 'body');
    }
    expect((await fetch(`${served.url}/nowhere`)).status).toBe(404);
  });
});

describe('t1 serve with a pretrained model (tiny Llama made by transformers)', () => {
  const fixture = join(import.meta.dirname, '../../fixtures/pretrained/llama-tied');
  let llama: Llama;
  let base: ReturnType<typeof loadPretrained>;
  let chat: ServedModel;

  beforeAll(async () => {
    base = loadPretrained(fixture);
    llama = new Llama(base.config, base.weights);
    chat = await serveCheckpoint({ model: { llama, tokenizer: base.tokenizer }, name: 'tiny-llama', port: 0 });
  });
  afterAll(async () => {
    await chat?.close();
    llama?.dispose();
  });

  const send = (path: string, body: unknown) =>
    fetch(`${chat.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

  it('answers chat messages through the model’s chat template: greedy output equals generate on the rendered prompt', async () => {
    const messages = [{ role: 'user' as const, content: 'What is 7 * 6?' }];
    const r = await send('/chat/completions', { model: 'tiny-llama', messages, temperature: 0, max_tokens: 12 });
    expect(r.status).toBe(200);
    const body = (await r.json()) as any;
    const prompt = base.tokenizer.encode(base.tokenizer.renderChat(messages, { addGenerationPrompt: true }));
    const [want] = await generate(llamaDecodable(llama, base.tokenizer.eosId), [prompt], { maxNewTokens: 12, greedy: true }, new Prng(0));
    const text = base.tokenizer.decode(want.stopped ? want.tokens.slice(0, -1) : want.tokens);
    expect(body).toMatchObject({ object: 'chat.completion', model: 'tiny-llama' });
    expect(body.choices[0].message).toEqual({ role: 'assistant', content: text });
    expect(body.usage.prompt_tokens).toBe(prompt.length);
    expect(body.usage.completion_tokens).toBe(want.tokens.length);
  });

  it('continues a raw completion prompt with the model’s own tokens, replaying a seed exactly', async () => {
    const req = { model: 'tiny-llama', prompt: 'Café 🙂 is', max_tokens: 10, seed: 7, n: 2 };
    const a = (await (await send('/completions', req)).json()) as any;
    const b = (await (await send('/completions', req)).json()) as any;
    expect(a.choices.map((c: any) => c.text)).toEqual(b.choices.map((c: any) => c.text));
    expect(a.usage.prompt_tokens).toBe(base.tokenizer.encode('Café 🙂 is').length);
  });

  it('refuses chat for a model without a chat template (our own checkpoints), naming the route to use', async () => {
    const r = await fetch(`${served.url}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'tiny', messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(r.status).toBe(404);
    expect(((await r.json()) as any).error.message).toBe('model "tiny" has no chat template; use /v1/completions');
  });
});
