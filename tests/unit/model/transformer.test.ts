import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { collate, disposeBatch } from '../../../model/batch';
import { buildExample } from '../../../model/tokenizer';
import { paramShapes } from '../../../model/shapes';
import { Transformer } from '../../../model/transformer';
import { maskedNllSum } from '../../../training/loss';
import { Prng } from '../../../util/prng';
import { expectFiniteDifferenceGradients, expectNoLeak, tinyConfig, useBackend } from './helpers';

useBackend();

function logitsOf(model: Transformer, rows: number[][]): Float32Array {
  return tf.tidy(() => model.forward(tf.tensor2d(rows, undefined, 'int32')).dataSync() as Float32Array);
}

describe('Transformer', () => {
  it('has the parameter count of its shapes (nanoGPT formula, no linear biases)', () => {
    const c = tinyConfig();
    const m = new Transformer(c, new Prng(1));
    const { vocabSize: V, contextLength: T, dModel: D, dFF: F, nLayers: L } = c;
    expect(m.paramCount()).toBe(V * D + T * D + L * (4 * D + 4 * D * D + 2 * D * F) + 2 * D);
    expect(m.names).toEqual(paramShapes(c).map(([n]) => n));
    const untied = new Transformer(tinyConfig({ tieEmbeddings: false }), new Prng(1));
    expect(untied.paramCount()).toBe(m.paramCount() + D * V);
    m.dispose();
    untied.dispose();
  });

  it('is causal: changing a later token never changes an earlier logit', () => {
    const m = new Transformer(tinyConfig({ initStd: 0.3 }), new Prng(2));
    const rng = new Prng(3);
    const V = m.config.vocabSize;
    const T = 12;
    const base = Array.from({ length: T }, () => rng.int(V));
    const a = logitsOf(m, [base]);
    for (const t of [1, 5, 11]) {
      const changed = base.slice();
      changed[t] = (changed[t] + 1 + rng.int(V - 1)) % V;
      const b = logitsOf(m, [changed]);
      expect(Array.from(b.subarray(0, t * V))).toEqual(Array.from(a.subarray(0, t * V)));
      expect(Array.from(b.subarray(t * V, (t + 1) * V))).not.toEqual(Array.from(a.subarray(t * V, (t + 1) * V)));
    }
    m.dispose();
  });

  it('batch rows are independent of each other', () => {
    const m = new Transformer(tinyConfig({ initStd: 0.3 }), new Prng(4));
    const rows = [
      [5, 6, 7, 8],
      [9, 10, 11, 12],
    ];
    const both = logitsOf(m, rows);
    const second = logitsOf(m, [rows[1]]);
    const V = m.config.vocabSize;
    for (let i = 0; i < 4 * V; i++) expect(both[4 * V + i]).toBeCloseTo(second[i], 5);
    m.dispose();
  });

  it('initialises deterministically from the seed', () => {
    const a = new Transformer(tinyConfig(), new Prng(7));
    const b = new Transformer(tinyConfig(), new Prng(7));
    const c = new Transformer(tinyConfig(), new Prng(8));
    expect(b.getWeights()).toEqual(a.getWeights());
    expect(c.getWeights().wte).not.toEqual(a.getWeights().wte);
    [a, b, c].forEach((m) => m.dispose());
  });

  it('clones, copies and averages weights between models', () => {
    const a = new Transformer(tinyConfig(), new Prng(1));
    const b = new Transformer(tinyConfig(), new Prng(2));
    const clone = a.clone();
    expect(clone.getWeights()).toEqual(a.getWeights());
    expect(clone.variables[0]).not.toBe(a.variables[0]);
    const wa = a.getWeights().wte;
    const wb = b.getWeights().wte;
    clone.emaFrom(b, 0.75);
    const mixed = clone.getWeights().wte;
    for (const i of [0, 17, 500]) expect(mixed[i]).toBeCloseTo(0.75 * wa[i] + 0.25 * wb[i], 6);
    clone.copyFrom(b);
    expect(clone.getWeights()).toEqual(b.getWeights());
    expect(() => clone.copyFrom(new Transformer(tinyConfig({ dFF: 8 }), new Prng(1)))).toThrow(/different configs/);
    [a, b, clone].forEach((m) => m.dispose());
  });

  it('rejects sequences longer than the context', () => {
    const m = new Transformer(tinyConfig(), new Prng(1));
    expect(() => m.forward(tf.zeros([1, 17], 'int32') as tf.Tensor2D)).toThrow(/exceeds contextLength 16/);
    m.dispose();
  });

  it('dispose frees every tensor the model made', async () => {
    await expectNoLeak(() => {
      const m = new Transformer(tinyConfig(), new Prng(1));
      const c = m.clone();
      tf.tidy(() => void m.forward(tf.tensor2d([[1, 2, 3]], undefined, 'int32')));
      m.dispose();
      c.dispose();
    });
  });

  it('forward leaves no tensors behind', async () => {
    const m = new Transformer(tinyConfig(), new Prng(1));
    const x = tf.tensor2d([[1, 2, 3]], undefined, 'int32');
    m.forward(x).dispose(); // builds the kept causal mask
    await expectNoLeak(() => m.forward(x).dispose());
    x.dispose();
    m.dispose();
  });

  it('loss gradients match central finite differences', () => {
    // Untied head, so every parameter kind (embeddings, norms, attention, MLP, head) is checked.
    const m = new Transformer(tinyConfig({ vocabSize: 101, initStd: 0.3, tieEmbeddings: false, nLayers: 2 }), new Prng(11));
    const rng = new Prng(12);
    const text = () => Array.from({ length: 1 + rng.int(3) }, () => String.fromCharCode(48 + rng.int(10))).join('');
    const batch = collate(
      [0, 1, 2].map(() => buildExample({ prompt: text(), reasoning: text(), answer: text(), verification: '' })),
      m.config.contextLength,
    );
    const loss = () => maskedNllSum(m.forward(batch.inputs), batch.targets, batch.mask).div(batch.count) as tf.Scalar;
    const { grads } = tf.variableGrads(loss, m.variables);
    expectFiniteDifferenceGradients(m, loss, grads, rng, { rel: 2e-2, abs: 2e-4 });
    tf.dispose(grads);
    disposeBatch(batch);
    m.dispose();
  });
});
