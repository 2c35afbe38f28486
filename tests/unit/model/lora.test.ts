/**
 * LoRA on the Llama family (model/lora.ts, Llama with adapters, the decoder's merge): a fresh adapter
 * changes nothing, gradients reach the adapters only and match finite differences, merging is the
 * same function, dropout is seeded and training-only, and a LoRA checkpoint is a small fraction of
 * the model. On the tensorflow backend (the decoder's in-place cache needs it).
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../../model/backend';
import { Llama } from '../../../model/llama';
import { llamaParamShapes } from '../../../model/shapes';
import { LlamaConfigSchema } from '../../../model/llama-config';
import { LlamaDecoder } from '../../../model/llama-decode';
import { dropoutMask, initLoraWeights, loraParamShapes } from '../../../model/lora';
import { LORA_TARGETS, LoraConfigSchema, type LoraConfig } from '../../../model/lora-config';
import { BLOCKED } from '../../../model/transformer';
import { AdamW } from '../../../training/adamw';
import { Prng } from '../../../util/prng';
import { expectFiniteDifferenceGradients, expectNoLeak, maxAbsDiff } from './helpers';
import { batchLoss, logitsOf, randomAdapters, randomWeights, tinyLlama } from './llama-helpers';

beforeAll(async () => {
  await initBackend('tfjs-node');
});

const ALL: Partial<LoraConfig> = { rank: 3, alpha: 6, targets: [...LORA_TARGETS] };

const ROWS = [
  [1, 7, 3, 9, 2, 30, 11],
  [5, 5, 0, 22, 14, 36, 8],
];

describe('LoraConfigSchema', () => {
  it("defaults to PEFT's LoraConfig(): r 8, alpha 8, no dropout, q and v", () => {
    expect(LoraConfigSchema.parse({})).toEqual({ rank: 8, alpha: 8, dropout: 0, targets: ['q', 'v'] });
  });

  it.each([
    ['rank 0', { rank: 0 }],
    ['fractional rank', { rank: 2.5 }],
    ['alpha 0', { alpha: 0 }],
    ['dropout 1', { dropout: 1 }],
    ['negative dropout', { dropout: -0.1 }],
    ['no targets', { targets: [] }],
    ['a repeated target', { targets: ['q', 'q'] }],
    ['an unknown target', { targets: ['q', 'lm_head'] }],
  ])('refuses %s', (_, bad) => {
    expect(LoraConfigSchema.safeParse(bad).success).toBe(false);
  });
});

describe('LoRA adapters', () => {
  it('are named beside the weight they adapt, A [in, r] and B [r, out], in canonical target order', () => {
    const c = tinyLlama();
    const shapes = loraParamShapes(c, LoraConfigSchema.parse({ rank: 3, targets: ['v', 'down', 'q'] }));
    expect(shapes).toEqual([
      ['h0.attn.wq.lora_a', [16, 3]],
      ['h0.attn.wq.lora_b', [3, 32]],
      ['h0.attn.wv.lora_a', [16, 3]],
      ['h0.attn.wv.lora_b', [3, 16]],
      ['h0.mlp.wd.lora_a', [24, 3]],
      ['h0.mlp.wd.lora_b', [3, 16]],
      ['h1.attn.wq.lora_a', [16, 3]],
      ['h1.attn.wq.lora_b', [3, 32]],
      ['h1.attn.wv.lora_a', [16, 3]],
      ['h1.attn.wv.lora_b', [3, 16]],
      ['h1.mlp.wd.lora_a', [24, 3]],
      ['h1.mlp.wd.lora_b', [3, 16]],
    ]);
    // Every target's [in, r] x [r, out] is its base weight's shape.
    const base = new Map(llamaParamShapes(c));
    for (const [name, shape] of loraParamShapes(c, LoraConfigSchema.parse(ALL))) {
      const w = base.get(name.replace(/\.lora_[ab]$/, ''))!;
      expect(name.endsWith('.lora_a') ? shape[0] : shape[1]).toBe(name.endsWith('.lora_a') ? w[0] : w[1]);
    }
  });

  it("start as PEFT's: A uniform in +-1/sqrt(in), deterministic by seed; B zero", () => {
    const c = tinyLlama({ dModel: 64, dFF: 96, nLayers: 1 });
    const lora = LoraConfigSchema.parse({ rank: 8, targets: ['q', 'down'] });
    const w = initLoraWeights(c, lora, new Prng(1));
    expect(initLoraWeights(c, lora, new Prng(1))).toEqual(w);
    expect(initLoraWeights(c, lora, new Prng(2))['h0.attn.wq.lora_a']).not.toEqual(w['h0.attn.wq.lora_a']);
    for (const [name, inDim] of [
      ['h0.attn.wq', 64],
      ['h0.mlp.wd', 96],
    ] as const) {
      const a = w[`${name}.lora_a`];
      const bound = 1 / Math.sqrt(inDim);
      expect(Math.max(...a.map(Math.abs))).toBeLessThanOrEqual(bound);
      expect(Math.max(...a.map(Math.abs))).toBeGreaterThan(0.9 * bound);
      const meanAbs = a.reduce((s, v) => s + Math.abs(v), 0) / a.length; // bound/2 for a uniform
      expect(meanAbs).toBeGreaterThan(0.4 * bound);
      expect(meanAbs).toBeLessThan(0.6 * bound);
      expect(w[`${name}.lora_b`].every((v) => v === 0)).toBe(true);
    }
  });
});

describe('Llama with LoRA', () => {
  it.each([
    ['q/k/v biases, untied head', {}],
    ['no biases, tied head', { qkvBias: false, tieEmbeddings: true }],
  ])('%s: a fresh adapter (B = 0) gives the base logits bitwise, on every target', (_, over) => {
    const c = tinyLlama(over);
    const w = randomWeights(c, 1);
    const base = new Llama(c, w);
    const lora = LoraConfigSchema.parse(ALL);
    const m = new Llama(c, w, { config: lora, weights: initLoraWeights(c, lora, new Prng(3)) });
    expect(logitsOf(m, ROWS)).toEqual(logitsOf(base, ROWS));
    // Dropout acts on the adapter's input only, so with B = 0 it changes nothing either.
    const dropping = new Llama(c, w, { config: { ...lora, dropout: 0.5 }, weights: initLoraWeights(c, lora, new Prng(3)) });
    expect(logitsOf(dropping, ROWS, { dropout: new Prng(4) })).toEqual(logitsOf(base, ROWS));
    [base, m, dropping].forEach((x) => x.dispose());
  });

  it('trains the adapters only: variables, names, paramCount and getWeights are the adapters; the base stays readable', () => {
    const c = tinyLlama();
    const w = randomWeights(c, 1);
    const adapters = randomAdapters(c, { rank: 2, targets: ['q', 'v'] }, 2);
    const m = new Llama(c, w, adapters);
    expect(m.names).toEqual(loraParamShapes(c, adapters.config).map(([n]) => n));
    expect(m.variables.every((v) => v.trainable)).toBe(true);
    expect(m.paramCount()).toBe(2 * (16 * 2 + 2 * 32 + 16 * 2 + 2 * 16));
    expect(m.getWeights()).toEqual(adapters.weights);
    expect(m.baseWeights()).toEqual(w);
    expect(m.weight('h1.attn.wk').trainable).toBe(false);
    expect(m.weight('h1.attn.wk').dataSync()).toEqual(w['h1.attn.wk']);
    m.dispose();
  });

  it('refuses adapters its config does not name', () => {
    const c = tinyLlama();
    const adapters = randomAdapters(c, { targets: ['q', 'v'] }, 2);
    const extra = { ...adapters.weights, 'h0.mlp.wd.lora_a': new Float32Array(24 * 8) };
    expect(() => new Llama(c, randomWeights(c, 1), { config: adapters.config, weights: extra })).toThrow(/h0\.mlp\.wd\.lora_a/);
  });

  it('adapter gradients match central finite differences; the base gets no gradient and no update', () => {
    const c = tinyLlama({ vocabSize: 23, nLayers: 1 });
    const w = randomWeights(c, 11, 0.4);
    const m = new Llama(c, w, randomAdapters(c, { ...ALL, rank: 2, alpha: 3 }, 5, 0.4));
    const { loss, tensors } = batchLoss(m);
    // No variable list: every trainable variable. The frozen base weights are not among them.
    const { grads } = tf.variableGrads(loss);
    const baseNames = llamaParamShapes(c).map(([n]) => m.weight(n).name);
    expect(baseNames.filter((n) => n in grads)).toEqual([]);
    expect(m.variables.every((v) => v.name in grads)).toBe(true);

    // Every adapter matters (B non-zero: A's gradient too): each one's largest gradient above 1e-4.
    expectFiniteDifferenceGradients(m, loss, grads, new Prng(12), { rel: 3e-2, abs: 3e-4, minLargest: 1e-4 });

    // One optimizer step on model.variables moves every adapter and leaves every base weight bitwise as it was.
    const before = m.getWeights();
    const opt = new AdamW(m.variables, m.names, { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 });
    opt.step(
      m.variables.map((v) => grads[v.name]),
      1e-2,
    );
    const after = m.getWeights();
    for (const n of m.names) expect(maxAbsDiff(after[n], before[n])).toBeGreaterThan(0);
    expect(m.baseWeights()).toEqual(w);
    opt.dispose();
    tf.dispose([grads, tensors] as never);
    m.dispose();
  });

  it.each([
    ['q and v', { rank: 4, alpha: 8, targets: ['q', 'v'] } as Partial<LoraConfig>],
    ['every projection', ALL],
  ])('%s: merged weights give the unmerged forward’s logits (1e-5), and the adapters leave the base untouched', (_, lora) => {
    const c = tinyLlama();
    const w = randomWeights(c, 2);
    const m = new Llama(c, w, randomAdapters(c, lora, 3));
    const merged = new Llama(c, m.mergedWeights());
    const base = new Llama(c, w);
    const ours = logitsOf(m, ROWS);
    expect(maxAbsDiff(logitsOf(merged, ROWS), ours)).toBeLessThan(1e-5);
    expect(maxAbsDiff(logitsOf(base, ROWS), ours)).toBeGreaterThan(0.1); // the adapters matter
    expect(m.baseWeights()).toEqual(w);
    // A plain model's merged weights are its weights.
    expect(base.mergedWeights()).toEqual(w);
    [m, merged, base].forEach((x) => x.dispose());
  });

  for (const mode of ['append', 'inplace'] as const) {
    it(`the decoder (${mode}) gives forward’s logits with the adapters merged, and frees what it merged`, () => {
      const c = tinyLlama({ tieEmbeddings: true });
      const m = new Llama(c, randomWeights(c, 4), randomAdapters(c, ALL, 5));
      const V = c.vocabSize;
      const rng = new Prng(6);
      const seqs = [0, 1].map(() => Array.from({ length: 20 }, () => 1 + rng.int(V - 1)));
      const L = 6;
      const before = tf.memory().numTensors;
      const d = new LlamaDecoder(m, mode);
      const causal = Array.from({ length: L }, (_, i) => Array.from({ length: L }, (_, j) => (j > i ? BLOCKED : 0)));
      let logits = tf.tidy(() =>
        d.prefill(
          tf.tensor2d(
            seqs.map((s) => s.slice(0, L)),
            undefined,
            'int32',
          ),
          tf.tensor2d(
            [0, 1].map(() => Array.from({ length: L }, (_, i) => i)),
            undefined,
            'int32',
          ),
          tf.tensor4d([[causal]]),
        ),
      );
      let maxDiff = 0;
      for (let n = L; n < seqs[0].length; n++) {
        const got = logits.dataSync();
        const full = logitsOf(m, [seqs[0].slice(0, n), seqs[1].slice(0, n)]);
        for (let b = 0; b < 2; b++)
          maxDiff = Math.max(maxDiff, maxAbsDiff(got.subarray(b * V, (b + 1) * V), full.subarray(((b + 1) * n - 1) * V, (b + 1) * n * V)));
        const slots = d.keySlots();
        const next = tf.tidy(() =>
          d.step(
            tf.tensor2d(
              seqs.map((s) => [s[n]]),
              undefined,
              'int32',
            ),
            tf.tensor2d([[n], [n]], undefined, 'int32'),
            tf.tensor4d([0, 1].map(() => [[Array.from({ length: slots }, (_, j) => (j > n ? BLOCKED : 0))]])),
          ),
        );
        logits.dispose();
        logits = next;
      }
      logits.dispose();
      const whole = tf.tidy(() => d.logits(tf.tensor2d(seqs, undefined, 'int32')).dataSync());
      expect(maxAbsDiff(whole, logitsOf(m, seqs))).toBeLessThan(1e-4);
      expect(maxDiff).toBeLessThan(1e-4);
      d.dispose();
      expect(tf.memory().numTensors).toBe(before);
      m.dispose();
    });
  }

  it('forward with adapters and dropout leaves no tensors behind', async () => {
    const c = tinyLlama();
    const m = new Llama(c, randomWeights(c, 1), randomAdapters(c, { ...ALL, dropout: 0.2 }, 2));
    const x = tf.tensor2d([[1, 2, 3]], undefined, 'int32');
    await expectNoLeak(() => m.forward(x, { dropout: new Prng(1) }).dispose());
    await expectNoLeak(() => tf.dispose(m.mergedTensors()));
    x.dispose();
    m.dispose();
  });
});

describe('LoRA dropout', () => {
  it('masks each element with probability p, scaling the kept ones by 1/(1-p), deterministically by seed', () => {
    const p = 0.3;
    const mask = tf.tidy(() => dropoutMask(new Prng(9), 400, 250, p).dataSync());
    const zeros = mask.filter((v) => v === 0).length / mask.length;
    expect(Math.abs(zeros - p)).toBeLessThan(0.01);
    expect(new Set(mask)).toEqual(new Set([0, Math.fround(1 / (1 - p))]));
    expect(tf.tidy(() => dropoutMask(new Prng(9), 400, 250, p).dataSync())).toEqual(mask);
  });

  it('is drawn from the given Prng only: same seed same logits, another seed others, a resumed stream the same as an unbroken one', () => {
    const c = tinyLlama();
    const m = new Llama(c, randomWeights(c, 1), randomAdapters(c, { ...ALL, dropout: 0.25 }, 2));
    const eval0 = logitsOf(m, ROWS);
    const a = logitsOf(m, ROWS, { dropout: new Prng(7) });
    expect(logitsOf(m, ROWS, { dropout: new Prng(7) })).toEqual(a);
    expect(maxAbsDiff(a, eval0)).toBeGreaterThan(1e-3);
    expect(maxAbsDiff(logitsOf(m, ROWS, { dropout: new Prng(8) }), a)).toBeGreaterThan(1e-3);

    // Resume: a stream rebuilt from a saved state draws the masks the unbroken one draws next.
    const unbroken = new Prng(7);
    logitsOf(m, ROWS, { dropout: unbroken });
    const saved = unbroken.state();
    const next = logitsOf(m, ROWS, { dropout: unbroken });
    expect(logitsOf(m, ROWS, { dropout: new Prng(saved) })).toEqual(next);
    expect(maxAbsDiff(next, a)).toBeGreaterThan(1e-3);
    m.dispose();
  });

  it('is off unless requested: without the option, or at dropout 0 (the Prng then untouched)', () => {
    const c = tinyLlama();
    const w = randomWeights(c, 1);
    const adapters = randomAdapters(c, { ...ALL, dropout: 0.5 }, 2);
    const m = new Llama(c, w, adapters);
    const merged = new Llama(c, m.mergedWeights()); // the deterministic function
    const plain = logitsOf(m, ROWS);
    expect(logitsOf(m, ROWS, {})).toEqual(plain);
    expect(maxAbsDiff(plain, logitsOf(merged, ROWS))).toBeLessThan(1e-5);

    const noDropout = new Llama(c, w, { ...adapters, config: { ...adapters.config, dropout: 0 } });
    const rng = new Prng(3);
    expect(logitsOf(noDropout, ROWS, { dropout: rng })).toEqual(plain);
    expect(rng.state()).toEqual(new Prng(3).state());
    [m, merged, noDropout].forEach((x) => x.dispose());
  });
});

describe('LoRA checkpoint size', () => {
  it('SmolLM2-135M, rank 8 on q and v: the adapters are a few hundred times smaller than the model', () => {
    const smol = LlamaConfigSchema.parse({
      architecture: 'LlamaForCausalLM',
      vocabSize: 49152,
      dModel: 576,
      nLayers: 30,
      nHeads: 9,
      nKvHeads: 3,
      headDim: 64,
      dFF: 1536,
      contextLength: 8192,
      ropeTheta: 100000,
      rmsEps: 1e-5,
      tieEmbeddings: true,
      qkvBias: false,
    });
    const count = (shapes: [string, number[]][]) => shapes.reduce((n, [, s]) => n + s.reduce((a, b) => a * b, 1), 0);
    const full = count(llamaParamShapes(smol));
    const adapters = count(loraParamShapes(smol, LoraConfigSchema.parse({ rank: 8 })));
    expect(full).toBe(134_515_008); // SmolLM2-135M's parameter count
    expect(adapters).toBe(30 * (576 * 8 + 8 * 576 + 576 * 8 + 8 * 192));
    const ratio = full / adapters;
    console.log(`[lora] SmolLM2-135M: ${full} weights, rank-8 q/v adapters ${adapters}: ${ratio.toFixed(0)}x smaller`);
    expect(ratio).toBeGreaterThan(10);
  });
});
