/**
 * LlamaDecoder (the Llama family's KV-cache decoder) against Llama.forward: on tiny random models
 * (grouped-query attention, q/k/v biases on and off, tied and untied heads, Llama 3 RoPE scaling),
 * both cache modes, left-padded batches, GROW boundaries and rows leaving the batch; then greedy
 * decoding on the real SmolLM2-135M-Instruct. On the tensorflow backend: the only one with both modes.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadPretrained } from '../../../formats/pretrained';
import { smolLm2Gguf } from '../../../infra/models';
import { initBackend } from '../../../model/backend';
import { GROW, type CacheMode } from '../../../model/decode';
import { Llama } from '../../../model/llama';
import type { LlamaConfig } from '../../../model/llama-config';
import { llamaDecodable, LlamaDecoder } from '../../../model/llama-decode';
import { generate } from '../../../model/sample';
import { BLOCKED } from '../../../model/transformer';
import { Prng } from '../../../util/prng';
import { decodingDeviation } from './helpers';
import { randomWeights, tinyLlama } from './llama-helpers';

beforeAll(async () => {
  await initBackend('tfjs-node');
});

/** A 128-token context: 70 steps past the prompts. */
function tiny(over: Partial<LlamaConfig> = {}): LlamaConfig {
  return tinyLlama({ contextLength: 128, ...over });
}

const CONFIGS: [string, Partial<LlamaConfig>][] = [
  ['GQA 4/2, q/k/v biases, untied head', { qkvBias: true, tieEmbeddings: false }],
  [
    'GQA 4/2, no biases, tied head, Llama 3 RoPE scaling',
    {
      qkvBias: false,
      tieEmbeddings: true,
      ropeScaling: { factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalContextLength: 32 },
    },
  ],
  ['multi-query 4/1, q/k/v biases, tied head', { nKvHeads: 1, qkvBias: true, tieEmbeddings: true }],
];

/** numTensors now (leak checks). */
const live = () => tf.memory().numTensors;

/**
 * decodingDeviation (./helpers) of LlamaDecoder against Llama.forward over `steps` tokens past
 * left-padded prompts of 5, 3 and 4 tokens; at step `dropAt` row 1 leaves the batch and the other
 * two swap places (keepRows([2, 0])).
 */
function deviation(m: Llama, mode: CacheMode, steps: number, dropAt: number) {
  const V = m.config.vocabSize;
  return decodingDeviation(
    () => new LlamaDecoder(m, mode),
    (x) => m.forward(x),
    { vocabSize: V, steps, token: (rng) => 1 + rng.int(V - 1), dropAt, keep: [2, 0] },
  );
}

/** N tokens by greedy argmax of repeated full forward passes (no cache) after the prompt. */
function greedyReference(m: Llama, prompt: number[], N: number): number[] {
  const seq = [...prompt];
  for (let i = 0; i < N; i++)
    seq.push(
      tf.tidy(
        () =>
          m
            .forward(tf.tensor2d([seq], undefined, 'int32'))
            .slice([0, seq.length - 1, 0], [1, 1, -1])
            .reshape([1, -1])
            .argMax(1)
            .dataSync()[0],
      ),
    );
  return seq.slice(prompt.length);
}

describe('LlamaDecoder against Llama.forward (tiny random models, tensorflow backend)', () => {
  for (const [name, over] of CONFIGS) {
    for (const mode of ['append', 'inplace'] as const) {
      it(`${name}, ${mode}: 70 steps past left-padded prompts, a row dropped at step 30, same logits, no leaks`, () => {
        const c = tiny(over);
        const m = new Llama(c, randomWeights(c, 7));
        const before = live();
        const { maxDiff, scale, slotsSeen, flat } = deviation(m, mode, 70, 30);
        expect(live()).toBe(before); // prefill, steps, grow, keepRows and dispose leave nothing behind
        expect(flat).toBe(true); // and a step holds as many tensors as the one before
        expect(scale).toBeGreaterThan(1);
        expect(maxDiff / scale).toBeLessThan(1e-4);
        // 5 prompt keys + 70 steps: append attends to 6..75 slots; in place crosses two GROW boundaries.
        if (mode === 'inplace') expect([...slotsSeen]).toEqual([GROW, 2 * GROW, 3 * GROW]);
        else expect(slotsSeen.size).toBe(70);
        m.dispose();
      });
    }
  }

  it('a prompt bias given per query head ([n,H,L,L]) reaches the head it names', () => {
    // Heads 1 and 3 (the second of each kv group's two) write nothing to the output: their wo rows are zero. A mask on them
    // alone must then change nothing, and the same mask on heads 0 and 2 must change the logits.
    const c = tiny();
    const K = c.headDim;
    const w = randomWeights(c, 3);
    for (let l = 0; l < c.nLayers; l++) for (const h of [1, 3]) w[`h${l}.attn.wo`].fill(0, h * K * c.dModel, (h + 1) * K * c.dModel);
    const m = new Llama(c, w);
    const L = 4;
    const mask = (own: boolean) =>
      Array.from({ length: L }, (_, i) => Array.from({ length: L }, (_, j) => (j > i || (own && j !== i) ? BLOCKED : 0)));
    const d = new LlamaDecoder(m, 'append');
    const run = (bias: number[][][][]) =>
      tf.tidy(() =>
        Array.from(
          d
            .prefill(tf.tensor2d([[3, 9, 4, 20]], undefined, 'int32'), tf.tensor2d([[0, 1, 2, 3]], undefined, 'int32'), tf.tensor4d(bias))
            .dataSync(),
        ),
      );
    const causal = run([[mask(false)]]);
    const silent = run([[0, 1, 2, 3].map((h) => mask(h === 1 || h === 3))]);
    const heard = run([[0, 1, 2, 3].map((h) => mask(h === 0 || h === 2))]);
    const diff = (a: number[], b: number[]) => Math.max(...a.map((v, i) => Math.abs(v - b[i])));
    expect(diff(silent, causal)).toBeLessThan(1e-6);
    expect(diff(heard, causal)).toBeGreaterThan(1e-3);
    d.dispose();
    m.dispose();
  });

  for (const [name, over] of CONFIGS) {
    it(`${name}: logits() equals forward, leaving no tensors behind`, () => {
      const c = tiny(over);
      const m = new Llama(c, randomWeights(c, 9));
      const rng = new Prng(4);
      const x = tf.tensor2d(
        [0, 1, 2].map(() => Array.from({ length: 23 }, () => rng.int(c.vocabSize))),
        undefined,
        'int32',
      );
      const ref = tf.tidy(() => m.forward(x).dataSync());
      const before = live();
      const d = new LlamaDecoder(m);
      const got = tf.tidy(() => d.logits(x).dataSync());
      d.dispose();
      expect(live()).toBe(before);
      let maxDiff = 0;
      let scale = 0;
      ref.forEach((v, i) => {
        maxDiff = Math.max(maxDiff, Math.abs(v - got[i]));
        scale = Math.max(scale, Math.abs(v));
      });
      expect(got.length).toBe(ref.length);
      expect(maxDiff / scale).toBeLessThan(1e-4);
      x.dispose();
      m.dispose();
    });
  }

  it('drives generate (llamaDecodable): greedy continuations of left-padded prompts equal argmax of full forward passes', async () => {
    const c = tiny({ ropeScaling: { factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalContextLength: 32 } });
    const m = new Llama(c, randomWeights(c, 5));
    const prompts = [
      [3, 8, 1, 30, 12, 7],
      [22, 5],
      [9, 9, 14],
    ];
    const N = 40;
    const reference = prompts.map((p) => greedyReference(m, p, N));
    for (const mode of ['append', 'inplace'] as const) {
      // eos = V: no token ends a response, every row runs N tokens.
      const samples = await generate(llamaDecodable(m, c.vocabSize, mode), prompts, { maxNewTokens: N, greedy: true }, new Prng(1));
      expect(samples.map((s) => s.tokens)).toEqual(reference);
    }
    m.dispose();
  });

  it('refuses a step before prefill and a key bias of the wrong width', () => {
    const c = tiny();
    const m = new Llama(c, randomWeights(c, 1));
    const d = new LlamaDecoder(m, 'inplace');
    const one = tf.tensor2d([[1]], undefined, 'int32');
    expect(() => d.step(one, one, tf.zeros([1, 1, 1, 2]) as tf.Tensor4D)).toThrow(/before prefill/);
    tf.tidy(() => d.prefill(tf.tensor2d([[1, 2]], undefined, 'int32'), tf.tensor2d([[0, 1]], undefined, 'int32'), tf.zeros([1, 1, 2, 2])));
    expect(d.keySlots()).toBe(GROW);
    expect(() => tf.tidy(() => d.step(one, one, tf.zeros([1, 1, 1, 3]) as tf.Tensor4D))).toThrow(/expected 32/);
    one.dispose();
    d.dispose();
    m.dispose();
  });
});

describe('LlamaDecoder on SmolLM2-135M-Instruct', () => {
  it('greedy decoding equals greedy argmax of repeated full forward passes; tokens/s at batch 1 and 16', async () => {
    const base = loadPretrained(await smolLm2Gguf());
    const m = new Llama(base.config, base.weights);
    const tok = base.tokenizer;
    const prompt = tok.encode(tok.renderChat([{ role: 'user', content: 'What is the capital of France?' }], { addGenerationPrompt: true }));
    const N = 24;
    const L = prompt.length;
    const argmaxRows = (logits: tf.Tensor2D) => tf.tidy(() => Array.from(logits.argMax(1).dataSync()));

    const reference = greedyReference(m, prompt, N);

    /** Greedy decoding of `batch` copies of the prompt: every row's tokens, and the ms of prefill and of each step. */
    const greedy = (batch: number, mode?: CacheMode) => {
      const d = new LlamaDecoder(m, mode);
      const causal = Array.from({ length: L }, (_, i) => Array.from({ length: L }, (_, j) => (j > i ? BLOCKED : 0)));
      const rows = Array.from({ length: batch }, () => [] as number[]);
      let t0 = performance.now();
      let logits = tf.tidy(() =>
        d.prefill(
          tf.tensor2d(
            Array.from({ length: batch }, () => prompt),
            undefined,
            'int32',
          ),
          tf.tensor2d(
            Array.from({ length: batch }, () => prompt.map((_, i) => i)),
            undefined,
            'int32',
          ),
          tf.tensor4d([[causal]]),
        ),
      );
      argmaxRows(logits).forEach((t, b) => rows[b].push(t));
      const prefillMs = performance.now() - t0;
      t0 = performance.now();
      for (let i = 1; i < N; i++) {
        const slots = d.keySlots();
        const Tk = L + i; // keys after this step
        const next = tf.tidy(() =>
          d.step(
            tf.tensor2d(
              rows.map((r) => [r[i - 1]]),
              undefined,
              'int32',
            ),
            tf.fill([batch, 1], L + i - 1, 'int32') as tf.Tensor2D,
            tf
              .tensor4d(
                Array.from({ length: slots }, (_, j) => (j >= Tk ? BLOCKED : 0)),
                [1, 1, 1, slots],
              )
              .tile([batch, 1, 1, 1]) as tf.Tensor4D,
          ),
        );
        logits.dispose();
        logits = next;
        argmaxRows(logits).forEach((t, b) => rows[b].push(t));
      }
      const stepMs = (performance.now() - t0) / (N - 1);
      logits.dispose();
      d.dispose();
      return { rows, prefillMs, stepMs };
    };

    const before = live();
    const one = greedy(1);
    const sixteen = greedy(16);
    const oneAppend = greedy(1, 'append');
    expect(live()).toBe(before);
    const text = tok.decode(one.rows[0]);
    console.log(`[llama-decode] SmolLM2 greedy (${L}-token prompt): ${JSON.stringify(text)}`);
    for (const [label, r, batch] of [
      ['inplace, batch 1', one, 1],
      ['inplace, batch 16', sixteen, 16],
      ['append, batch 1', oneAppend, 1],
    ] as const)
      console.log(
        `[llama-decode] ${label}: prefill ${r.prefillMs.toFixed(0)} ms, ${r.stepMs.toFixed(1)} ms/step, ${((1000 * batch) / r.stepMs).toFixed(1)} tokens/s`,
      );
    expect(one.rows[0]).toEqual(reference);
    expect(oneAppend.rows[0]).toEqual(reference);
    for (const r of sixteen.rows) expect(r).toEqual(reference);
    expect(text.length).toBeGreaterThan(0);
    m.dispose();
  }, 600_000);
});
