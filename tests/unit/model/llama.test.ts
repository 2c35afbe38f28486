import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { applyRope, Llama, rmsNorm, ropeInverseFrequencies, ropeTables } from '../../../model/llama';
import type { LlamaConfig } from '../../../model/llama-config';
import type { NamedArrays } from '../../../model/transformer';
import { Prng } from '../../../util/prng';
import { expectFiniteDifferenceGradients, expectNoLeak, useBackend } from './helpers';
import { batchLoss, logitsOf, randomWeights, tinyLlama } from './llama-helpers';

useBackend();

/** Head size 4 (H*K = D) and a 16-token context. */
function tiny(over: Partial<LlamaConfig> = {}): LlamaConfig {
  return tinyLlama({ headDim: 4, contextLength: 16, ...over });
}

describe('Llama building blocks', () => {
  it('RMSNorm divides by the root mean square and scales by the gain (hand-computed)', () => {
    const y = tf.tidy(() => rmsNorm(tf.tensor2d([[3, 4]]), tf.tensor1d([1, 2]), 0).dataSync());
    // rms = sqrt((9 + 16) / 2) = 3.5355339
    expect(y[0]).toBeCloseTo(0.8485281, 6);
    expect(y[1]).toBeCloseTo(2.2627417, 6);
  });

  it('RoPE rotates the first half of a head against the second (transformers rotate_half)', () => {
    const c = tiny({ headDim: 4, nHeads: 1, nKvHeads: 1, dModel: 4 });
    const { cos, sin } = ropeTables(c, 1, 1); // position 1: angles 1 and 1/100 (theta 1e4, K = 4)
    const y = tf.tidy(() =>
      applyRope(tf.tensor4d([1, 0, 0, 0], [1, 1, 1, 4]), tf.tensor3d(cos, [1, 1, 4]), tf.tensor3d(sin, [1, 1, 4])).dataSync(),
    );
    expect(Array.from(y).map((v) => +v.toFixed(6))).toEqual([+Math.cos(1).toFixed(6), 0, +Math.sin(1).toFixed(6), 0]);
    const z = tf.tidy(() =>
      applyRope(tf.tensor4d([0, 1, 0, 0], [1, 1, 1, 4]), tf.tensor3d(cos, [1, 1, 4]), tf.tensor3d(sin, [1, 1, 4])).dataSync(),
    );
    expect(z[1]).toBeCloseTo(Math.cos(0.01), 6);
    expect(z[3]).toBeCloseTo(Math.sin(0.01), 6);
  });

  it('RoPE scores depend only on the distance between positions', () => {
    const c = tiny({ headDim: 8, nHeads: 1, nKvHeads: 1, dModel: 8 });
    const rng = new Prng(3);
    const q = Array.from({ length: 8 }, () => rng.normal());
    const k = Array.from({ length: 8 }, () => rng.normal());
    const score = (m: number, n: number) =>
      tf.tidy(() => {
        const at = (v: number[], p: number) => {
          const { cos, sin } = ropeTables(c, p, 1);
          return applyRope(tf.tensor4d(v, [1, 1, 1, 8]), tf.tensor3d(cos, [1, 1, 8]), tf.tensor3d(sin, [1, 1, 8]));
        };
        return at(q, m).mul(at(k, n)).sum().dataSync()[0];
      });
    expect(score(7, 3)).toBeCloseTo(score(4, 0), 4);
    expect(score(7, 3)).not.toBeCloseTo(score(7, 6), 2);
  });

  it('Llama 3 scaling keeps short wavelengths, slows long ones by the factor and blends between (hand-computed)', () => {
    const c = tiny({
      headDim: 8,
      nHeads: 1,
      nKvHeads: 1,
      dModel: 8,
      ropeScaling: { factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalContextLength: 64 },
    });
    // Plain frequencies 1, 0.1, 0.01, 0.001 (wavelengths 6.3, 63, 628, 6283 against bounds 16 and 64);
    // the second is blended with smooth = (64 / (2 pi / 0.1) - 1) / 3.
    const f = ropeInverseFrequencies(c);
    expect(f[0]).toBeCloseTo(1, 7);
    expect(f[1]).toBeCloseTo(0.013042256, 7);
    expect(f[2]).toBeCloseTo(0.00125, 7);
    expect(f[3]).toBeCloseTo(0.000125, 8);
  });
});

describe('Llama', () => {
  it('has the parameter count of its shapes (GQA: k and v are G heads wide)', () => {
    const c = tiny();
    const m = new Llama(c, randomWeights(c, 1));
    const { vocabSize: V, dModel: D, dFF: F, nLayers: L, nHeads: H, nKvHeads: G, headDim: K } = c;
    const perLayer = 2 * D + D * H * K + 2 * D * G * K + H * K + 2 * G * K + H * K * D + 3 * D * F;
    expect(m.paramCount()).toBe(V * D + L * perLayer + D + D * V);
    m.dispose();
  });

  it('grouped-query attention equals full attention with each key/value head repeated for its query heads', () => {
    // transformers' repeat_kv: query head h reads key/value head floor(h / (H/G)).
    const c = tiny({ nHeads: 4, nKvHeads: 2, qkvBias: true });
    const w = randomWeights(c, 5);
    const full = { ...c, nKvHeads: 4 };
    const repeat = (a: Float32Array, rows: number) => {
      const K = c.headDim;
      const out = new Float32Array(a.length * 2);
      const cols = a.length / rows; // [rows, G*K] -> [rows, H*K]
      for (let r = 0; r < rows; r++)
        for (let h = 0; h < 4; h++)
          out.set(a.subarray(r * cols + Math.floor(h / 2) * K, r * cols + (Math.floor(h / 2) + 1) * K), r * 2 * cols + h * K);
      return out;
    };
    const wFull: NamedArrays = { ...w };
    for (let l = 0; l < c.nLayers; l++) {
      for (const n of ['wk', 'wv']) wFull[`h${l}.attn.${n}`] = repeat(w[`h${l}.attn.${n}`], c.dModel);
      for (const n of ['bk', 'bv']) wFull[`h${l}.attn.${n}`] = repeat(w[`h${l}.attn.${n}`], 1);
    }
    const a = new Llama(c, w);
    const b = new Llama(full, wFull);
    const rows = [
      [1, 5, 9, 2, 7, 3],
      [4, 4, 8, 0, 36, 11],
    ];
    const la = logitsOf(a, rows);
    const lb = logitsOf(b, rows);
    let maxDiff = 0;
    la.forEach((v, i) => (maxDiff = Math.max(maxDiff, Math.abs(v - lb[i]))));
    expect(maxDiff).toBeLessThan(1e-4);
    a.dispose();
    b.dispose();
  });

  it('is causal: changing a later token never changes an earlier logit', () => {
    const c = tiny();
    const m = new Llama(c, randomWeights(c, 2));
    const a = logitsOf(m, [[1, 2, 3, 4, 5, 6]]);
    const b = logitsOf(m, [[1, 2, 3, 30, 31, 32]]);
    const V = c.vocabSize;
    for (let i = 0; i < 3 * V; i++) expect(b[i]).toBeCloseTo(a[i], 5);
    expect(Math.abs(b[3 * V] - a[3 * V])).toBeGreaterThan(1e-4);
    m.dispose();
  });

  it('tied embeddings use the embedding matrix as the output head', () => {
    const c = tiny({ tieEmbeddings: true });
    const w = randomWeights(c, 4);
    const untied = { ...c, tieEmbeddings: false };
    const wte = w.wte;
    const head = new Float32Array(wte.length); // [D, V] = wte^T
    for (let v = 0; v < c.vocabSize; v++) for (let d = 0; d < c.dModel; d++) head[d * c.vocabSize + v] = wte[v * c.dModel + d];
    const a = new Llama(c, w);
    const b = new Llama(untied, { ...w, head });
    const la = logitsOf(a, [[3, 1, 4, 1, 5]]);
    const lb = logitsOf(b, [[3, 1, 4, 1, 5]]);
    la.forEach((v, i) => expect(v).toBeCloseTo(lb[i], 5));
    a.dispose();
    b.dispose();
  });

  it('forward leaves no tensors behind', async () => {
    const c = tiny();
    const m = new Llama(c, randomWeights(c, 1));
    const x = tf.tensor2d([[1, 2, 3]], undefined, 'int32');
    await expectNoLeak(() => m.forward(x).dispose());
    x.dispose();
    m.dispose();
  });

  it('loss gradients match central finite differences for every parameter', () => {
    const c = tiny({ vocabSize: 23, nLayers: 1 });
    const m = new Llama(c, randomWeights(c, 11, 0.4));
    const { loss, tensors } = batchLoss(m);
    const { grads } = tf.variableGrads(loss, m.variables);
    expectFiniteDifferenceGradients(m, loss, grads, new Prng(12), { rel: 3e-2, abs: 3e-4 });
    tf.dispose([grads, tensors] as never);
    m.dispose();
  });
});
