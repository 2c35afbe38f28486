/**
 * The native TensorFlow backend (tfjs-node over the tensorflow-cpu 2.12.1 C API, see
 * infra/native-tf.md) is an unsupported pairing, so its numerics are checked here against exact
 * products, float64 finite differences and the pure-JS cpu backend.
 *
 * Three modes, chosen when this file loads:
 *  - native: `@tensorflow/tfjs-node` loads in this process -> the numerics suite runs, and
 *    provisionNativeTf (check only) must agree that it is available;
 *  - absent: it does not load -> provisionNativeTf (check only) must report ok:false with a reason,
 *    which is printed; the numerics suite shows as skipped. On CI (CI set) and with
 *    T1_NATIVE_TF=require this mode is a failure: what CI tests is what production runs;
 *  - off: T1_NATIVE_TF=off -> provisionNativeTf must refuse with a reason naming the variable.
 */
import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { defaultCacheDir, provisionNativeTf } from '../../infra/native-tf';
import { BATCH_LIMIT, installNativeMatMul, MATMUL_LIMIT, smallOp } from '../../model/native-matmul';
import { GROW } from '../../model/decode';
import { Transformer } from '../../model/transformer';
import { decoderDeviation, tinyConfig } from './model/helpers';
import { Prng } from '../../util/prng';

const projectDir = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const setting = (process.env.T1_NATIVE_TF ?? '').toLowerCase();
const off = ['off', '0', 'false', 'no'].includes(setting);
/** As infra/bootstrap.mjs decides: CI (unless T1_NATIVE_TF says otherwise) and T1_NATIVE_TF=require demand the native backend. */
const required = setting === 'require' || (!!process.env.CI && process.env.T1_NATIVE_TF === undefined);

let loadError: string | undefined;
if (!off) {
  try {
    createRequire(import.meta.url)('@tensorflow/tfjs-node');
  } catch (err) {
    loadError = (err as Error).message.split('\n')[0];
  }
}
const native = !off && loadError === undefined;
const quiet = () => {};

function randn(prng: Prng, n: number, scale = 1): number[] {
  return Array.from({ length: n }, () => prng.normal() * scale);
}

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, atol: number, rtol = 0, what = '') {
  expect(actual.length, `${what} length`).toBe(expected.length);
  let worst = 0;
  let at = -1;
  for (let i = 0; i < expected.length; i++) {
    const excess = Math.abs(actual[i] - expected[i]) - (atol + rtol * Math.abs(expected[i]));
    if (!(excess <= worst)) {
      worst = Number.isNaN(excess) ? Infinity : excess;
      at = i;
    }
  }
  expect(at, `${what}: element ${at} is ${actual[at]}, expected ${expected[at]}`).toBe(-1);
}

/** Runs `f` on a backend and returns plain arrays (tensors are created and disposed inside). */
async function onBackend(name: string, f: () => Record<string, tf.Tensor>): Promise<Record<string, number[]>> {
  expect(await tf.setBackend(name)).toBe(true);
  const out: Record<string, number[]> = {};
  tf.tidy(() => {
    for (const [k, t] of Object.entries(f())) out[k] = Array.from(t.dataSync());
  });
  return out;
}

describe('provisionNativeTf: not-available cases', () => {
  it('T1_NATIVE_TF=off returns ok:false with a reason and touches nothing', async () => {
    const t0 = Date.now();
    const r = await provisionNativeTf({
      projectDir,
      cacheDir: '/nonexistent/t1-cache',
      log: quiet,
      env: { ...process.env, T1_NATIVE_TF: 'off' },
    });
    expect(r.ok).toBe(false);
    expect(r.reason).toMatch(/T1_NATIVE_TF=off/);
    expect(Date.now() - t0).toBeLessThan(1000);
  });

  it('a project that does not declare tfjs-node is refused, not provisioned', async () => {
    const dir = mkdtempSync(join(tmpdir(), 't1-native-tf-'));
    try {
      writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'x', version: '0.0.0' }));
      const r = await provisionNativeTf({
        projectDir: dir,
        cacheDir: join(dir, 'cache'),
        log: quiet,
        env: { ...process.env, T1_NATIVE_TF: '' },
      });
      expect(r.ok).toBe(false);
      expect(r.reason).toMatch(/does not declare @tensorflow\/tfjs-node/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('native TensorFlow availability', () => {
  it('the provisioner agrees with whether tfjs-node loads here (CI and T1_NATIVE_TF=require demand it)', async () => {
    const r = await provisionNativeTf({ projectDir, cacheDir: defaultCacheDir(), log: quiet, checkOnly: true });
    if (required) expect(native, `@tensorflow/tfjs-node does not load: ${loadError}`).toBe(true);
    if (native) {
      expect(r).toMatchObject({ ok: true, backend: 'tensorflow' });
      return;
    }
    expect(r.ok).toBe(false);
    expect(r.reason ?? '').toMatch(/\S/);
    if (off) expect(r.reason).toMatch(/T1_NATIVE_TF/);
    console.warn(`[native-tf] tensorflow backend checks not run: ${r.reason}${loadError ? ` (in-process load: ${loadError})` : ''}`);
  });
});

describe.runIf(native)('tensorflow backend (tfjs-node)', () => {
  beforeAll(async () => {
    expect(tf.findBackend('tensorflow')).toBeTruthy();
    expect(await tf.setBackend('tensorflow')).toBe(true);
    installNativeMatMul(); // as initBackend does: every product below runs through it
  });

  it("is the backend named 'tensorflow', backed by a TensorFlow 2.x library", async () => {
    await tf.setBackend('tensorflow');
    expect(tf.getBackend()).toBe('tensorflow');
    const binding = (tf.backend() as unknown as { binding?: { TF_Version?: string } }).binding;
    expect(binding?.TF_Version).toMatch(/^2\.\d+\.\d+/);
  });

  it('matMul equals a hand-computed product (also transposed variants)', async () => {
    const out = await onBackend('tensorflow', () => {
      const a = tf.tensor2d([
        [1, 2, 3],
        [4, 5, 6],
      ]); // 2x3
      const b = tf.tensor2d([
        [7, 8],
        [9, 10],
        [11, 12],
      ]); // 3x2
      return {
        ab: tf.matMul(a, b),
        atbt: tf.matMul(b, a, true, true), // b^T a^T = (ab)^T
        abT: tf.matMul(a, a, false, true), // a a^T
        aTb: tf.matMul(a, a, true, false), // a^T a
      };
    });
    expect(out.ab).toEqual([58, 64, 139, 154]);
    expect(out.atbt).toEqual([58, 139, 64, 154]);
    expect(out.abT).toEqual([14, 32, 32, 77]);
    expect(out.aTb).toEqual([17, 22, 27, 22, 29, 36, 27, 36, 45]);
  });

  it('matMul of odd-sized random matrices matches a float64 reference', async () => {
    const [m, k, n] = [37, 53, 29];
    const prng = new Prng(11);
    const A = randn(prng, m * k);
    const B = randn(prng, k * n);
    const ref: number[] = [];
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let p = 0; p < k; p++) s += A[i * k + p] * B[p * n + j];
        ref.push(s);
      }
    }
    const out = await onBackend('tensorflow', () => ({ c: tf.matMul(tf.tensor2d(A, [m, k]), tf.tensor2d(B, [k, n])) }));
    expectClose(out.c, ref, 2e-5 * Math.sqrt(k), 1e-5, 'matMul');
  });

  it('gradient of a composite function matches float64 central differences', async () => {
    // f(x, W) = sum(tanh(xW)^2) + sum_rows logSumExp(xW) + sum(x * sin(x))
    const [m, k, n] = [3, 4, 5];
    const prng = new Prng(5);
    const x0 = randn(prng, m * k, 0.7);
    const w0 = randn(prng, k * n, 0.7);
    const f64 = (x: number[], w: number[]) => {
      let s = 0;
      for (let i = 0; i < m; i++) {
        const h: number[] = [];
        for (let j = 0; j < n; j++) {
          let v = 0;
          for (let p = 0; p < k; p++) v += x[i * k + p] * w[p * n + j];
          h.push(v);
          s += Math.tanh(v) ** 2;
        }
        const mx = Math.max(...h);
        s += mx + Math.log(h.reduce((a, v) => a + Math.exp(v - mx), 0));
      }
      for (const v of x) s += v * Math.sin(v);
      return s;
    };
    const fd = (which: 0 | 1) => {
      const eps = 1e-5;
      const base = which === 0 ? x0 : w0;
      return base.map((_, i) => {
        const plus = base.slice();
        const minus = base.slice();
        plus[i] += eps;
        minus[i] -= eps;
        const fp = which === 0 ? f64(plus, w0) : f64(x0, plus);
        const fm = which === 0 ? f64(minus, w0) : f64(x0, minus);
        return (fp - fm) / (2 * eps);
      });
    };
    const out = await onBackend('tensorflow', () => {
      const f = (x: tf.Tensor, w: tf.Tensor) => {
        const h = tf.matMul(x as tf.Tensor2D, w as tf.Tensor2D);
        return tf
          .sum(tf.square(tf.tanh(h)))
          .add(tf.sum(tf.logSumExp(h, 1)))
          .add(tf.sum(tf.mul(x, tf.sin(x))));
      };
      const { value, grads } = tf.valueAndGrads(f)([tf.tensor2d(x0, [m, k]), tf.tensor2d(w0, [k, n])]);
      return { value, dx: grads[0], dw: grads[1] };
    });
    expectClose(out.value, [f64(x0, w0)], 1e-4, 1e-5, 'f');
    expectClose(out.dx, fd(0), 1e-4, 1e-4, 'df/dx');
    expectClose(out.dw, fd(1), 1e-4, 1e-4, 'df/dW');
  });

  it('softmax, logSoftmax, gather, concat, transpose (and a softmax gradient) agree with the cpu backend within 1e-5', async () => {
    const prng = new Prng(23);
    const X = randn(prng, 6 * 17, 3);
    const Y = randn(prng, 6 * 5);
    const Z = randn(prng, 3 * 4 * 5);
    const W = randn(prng, 6 * 17);
    const compute = () => {
      const x = tf.tensor2d(X, [6, 17]);
      const y = tf.tensor2d(Y, [6, 5]);
      const z = tf.tensor3d(Z, [3, 4, 5]);
      const w = tf.tensor2d(W, [6, 17]);
      return {
        softmax: tf.softmax(x),
        logSoftmax: tf.logSoftmax(x),
        gather0: tf.gather(x, tf.tensor1d([5, 0, 3, 3], 'int32'), 0),
        gather1: tf.gather(x, tf.tensor1d([16, 2, 2, 9, 0], 'int32'), 1),
        concat0: tf.concat([x.slice([0, 0], [6, 5]), y], 0),
        concat1: tf.concat([x, y], 1),
        transpose: tf.transpose(z, [2, 0, 1]),
        gradLogSoftmax: tf.grad((v: tf.Tensor) => tf.sum(tf.mul(tf.logSoftmax(v as tf.Tensor2D), w)))(x),
        gradSoftmax: tf.grad((v: tf.Tensor) => tf.sum(tf.mul(tf.softmax(v as tf.Tensor2D), w)))(x),
      };
    };
    const cpu = await onBackend('cpu', compute);
    const native = await onBackend('tensorflow', compute);
    for (const k of Object.keys(cpu)) expectClose(native[k], cpu[k], 1e-5, 0, k);
    await tf.setBackend('tensorflow');
  });

  it('the BatchMatMul kernel sends small products to MatMul or BatchMatMul and large ones to oneDNN, all matching float64', async () => {
    const prng = new Prng(3);
    const cases: [number[], number[], boolean, boolean, string | null][] = [
      [[7, 5], [5, 3], false, false, 'MatMul'],
      [[5, 7], [3, 5], true, true, 'MatMul'],
      [[2, 3, 1, 8], [2, 3, 8, 6], false, false, 'BatchMatMul'], // decoding: q k^T per row and head
      [[2, 3, 1, 8], [2, 3, 6, 8], false, true, 'BatchMatMul'],
      [[2, 1, 8], [1, 8, 6], false, false, null], // broadcasting batch dims: BatchMatMulV2 only
      [[300, 256], [256, 260], false, false, null], // 2.0e7 multiply-adds > MATMUL_LIMIT
      [[64, 32, 40], [64, 40, 20], false, false, null], // 1.6e6 > BATCH_LIMIT
    ];
    expect(300 * 256 * 260).toBeGreaterThan(MATMUL_LIMIT);
    expect(64 * 32 * 40 * 20).toBeGreaterThan(BATCH_LIMIT);
    for (const [sa, sb, tA, tB, op] of cases) {
      const info = (shape: number[]) => ({ shape, dtype: 'float32' as const, dataId: {} });
      expect(smallOp(info(sa), info(sb), tA, tB), `${sa} x ${sb}`).toBe(op);
      const A = randn(
        prng,
        sa.reduce((x, y) => x * y),
      );
      const B = randn(
        prng,
        sb.reduce((x, y) => x * y),
      );
      const out = await onBackend('tensorflow', () => ({ c: tf.matMul(tf.tensor(A, sa), tf.tensor(B, sb), tA, tB) }));
      const cpu = await onBackend('cpu', () => ({ c: tf.matMul(tf.tensor(A, sa), tf.tensor(B, sb), tA, tB) }));
      const K = tA ? sa[sa.length - 2] : sa[sa.length - 1];
      expectClose(out.c, cpu.c, 2e-5 * Math.sqrt(K), 1e-5, `${sa} x ${sb}`);
    }
    await tf.setBackend('tensorflow');
  });

  it.each(['append', 'inplace'] as const)('the decoder (%s KV cache) equals a full forward pass at every step, over 70 tokens', (mode) => {
    const m = new Transformer(tinyConfig({ initStd: 0.5, contextLength: 80 }), new Prng(5));
    const before = tf.memory().numTensors;
    const { maxDiff, scale } = decoderDeviation(m, mode, 70); // in place: 70 > 2 * GROW, the cache grows twice
    expect(70).toBeGreaterThan(2 * GROW);
    expect(tf.memory().numTensors).toBe(before + 1); // the causal mask m.forward keeps: no cache left behind
    expect(maxDiff).toBeLessThan(1e-5 * scale);
    m.dispose();
  });
});
