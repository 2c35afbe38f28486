import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { Prng } from '../../../util/prng';
import { Decoder } from '../../../model/decode';
import { Transformer } from '../../../model/transformer';
import { tinyConfig, useWasm } from './helpers';

useWasm();

/** float64 reference of matMul with transposes and batch broadcasting over leading dims. */
function reference(a: tf.Tensor, b: tf.Tensor, tA: boolean, tB: boolean): { shape: number[]; values: Float64Array } {
  const av = a.dataSync();
  const bv = b.dataSync();
  const [ar, ac] = a.shape.slice(-2);
  const [br, bc] = b.shape.slice(-2);
  const [M, K] = tA ? [ac, ar] : [ar, ac];
  const P = tB ? br : bc;
  const batchA = a.size / (ar * ac);
  const batchB = b.size / (br * bc);
  const batch = Math.max(batchA, batchB);
  const out = new Float64Array(batch * M * P);
  for (let n = 0; n < batch; n++) {
    const ao = (batchA === 1 ? 0 : n) * ar * ac;
    const bo = (batchB === 1 ? 0 : n) * br * bc;
    for (let i = 0; i < M; i++)
      for (let j = 0; j < P; j++) {
        let s = 0;
        for (let k = 0; k < K; k++) s += av[ao + (tA ? k * ac + i : i * ac + k)] * bv[bo + (tB ? j * bc + k : k * bc + j)];
        out[(n * M + i) * P + j] = s;
      }
  }
  const outer = (a.rank >= b.rank ? a : b).shape.slice(0, -2);
  return { shape: [...(batchA >= batchB ? a.shape.slice(0, -2) : outer), M, P], values: out };
}

describe('wasm BatchMatMul replacement', () => {
  const rng = new Prng(1);
  const rand = (shape: number[]) =>
    tf.tensor(
      Float32Array.from({ length: shape.reduce((x, y) => x * y, 1) }, () => rng.normal()),
      shape,
    );
  const cases: [number[], number[], boolean, boolean][] = [
    [[5, 7], [7, 3], false, false],
    [[7, 5], [7, 3], true, false],
    [[5, 7], [3, 7], false, true],
    [[7, 5], [3, 7], true, true],
    [[70, 5], [70, 3], true, false], // cheaper as (b^T a)^T
    [[3, 70], [50, 70], false, true], // cheaper as (b a^T)^T
    [[4, 5, 7], [4, 7, 3], false, false], // batches of tiny pairs (stock kernel)
    [[4, 7, 5], [4, 3, 7], true, true],
    [[3, 40, 32], [3, 32, 30], false, false], // batches of larger pairs: one product per pair
    [[3, 32, 40], [3, 30, 32], true, true],
    [[40, 32], [3, 32, 30], false, false],
    [[2, 2, 40, 32], [2, 2, 32, 30], false, false],
    [[4, 5, 7], [7, 3], false, false], // batch times one shared matrix
    [[4, 5, 7], [1, 3, 7], false, true],
    [[2, 3, 5, 7], [2, 3, 7, 3], false, false], // rank 4 (attention)
    [[2, 3, 7, 5], [2, 3, 7, 3], true, false],
  ];
  it.each(cases)('%j x %j (transposeA=%s, transposeB=%s) matches a float64 reference', (sa, sb, tA, tB) => {
    const a = rand(sa);
    const b = rand(sb);
    const y = tf.matMul(a, b, tA, tB);
    const ref = reference(a, b, tA, tB);
    expect(y.shape).toEqual(ref.shape);
    const yv = y.dataSync();
    for (let i = 0; i < yv.length; i++) expect(Math.abs(yv[i] - ref.values[i])).toBeLessThan(1e-4 * (1 + Math.abs(ref.values[i])));
    tf.dispose([a, b, y]);
  });

  it('keeps the stock shape check and leaves no tensors behind', () => {
    const a = rand([4, 6]);
    const before = tf.memory().numTensors;
    expect(() => tf.matMul(a, a, true, false).dispose()).not.toThrow();
    expect(() => tf.matMul(a, rand([5, 2]), true, false)).toThrow(/inner shapes/);
    expect(tf.memory().numTensors).toBe(before + 1); // only the operand built inside expect()
  });
});

describe('the KV cache on wasm', () => {
  it('appends (an in-place cache needs the tensorflow backend, and is refused)', () => {
    const m = new Transformer(tinyConfig(), new Prng(5));
    expect(() => new Decoder(m, 'inplace')).toThrow(/tensorflow backend/);
    expect(new Decoder(m).mode).toBe('append');
    m.dispose();
  });
});
