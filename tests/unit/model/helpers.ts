import * as tf from '@tensorflow/tfjs';
import { beforeAll, expect } from 'vitest';
import { initBackend } from '../../../model/backend';
import { modelConfig, type ModelConfig } from '../../../model/config';
import { Decoder, type CacheMode } from '../../../model/decode';
import type { StepDecoder } from '../../../model/policy';
import { PAD } from '../../../model/tokenizer';
import { BLOCKED, type Transformer } from '../../../model/transformer';
import { Prng } from '../../../util/prng';

/** The backend production runs (native where it loads; CI requires it): what CI tests is what runs. */
export function useBackend(): void {
  beforeAll(async () => {
    await initBackend();
  });
}

/** The wasm fallback, for tests of its own kernels. */
export function useWasm(): void {
  beforeAll(async () => {
    await initBackend('wasm');
  });
}

/** A model small enough for exhaustive checks. */
export function tinyConfig(over: Partial<ModelConfig> = {}): ModelConfig {
  return modelConfig({ vocabSize: 101, contextLength: 16, dModel: 16, nLayers: 2, nHeads: 2, dFF: 32, ...over });
}

/** Runs f and asserts it leaves no tensors behind. */
export async function expectNoLeak<T>(f: () => T | Promise<T>): Promise<T> {
  const before = tf.memory().numTensors;
  const out = await f();
  const after = tf.memory().numTensors;
  if (after !== before) throw new Error(`tensor leak: ${before} -> ${after}`);
  return out;
}

/**
 * Largest difference between the decoder's logits and a full forward pass of the same prefix, over
 * `steps` tokens fed one at a time after left-padded prompts of 5, 3 and 4 tokens (row 1 leaves
 * the batch at step 40), and the largest logit (for a relative bound).
 */
export function decoderDeviation(m: Transformer, mode: CacheMode, steps: number): { maxDiff: number; scale: number } {
  const { maxDiff, scale } = decodingDeviation(
    () => new Decoder(m, mode),
    (x) => m.forward(x),
    { vocabSize: m.config.vocabSize, steps, token: (rng) => 6 + rng.int(95), dropAt: 40, keep: [0, 2] },
  );
  return { maxDiff, scale };
}

/**
 * A KV-cache decoder (a fresh one from `decoder`, disposed here) against `forward` of the same
 * prefix: the largest logit difference over `steps` tokens (drawn by `token` from Prng(2)) fed one
 * at a time after left-padded prompts of 5, 3 and 4 tokens; at step `dropAt` the batch keeps the
 * rows `keep` (keepRows). Also the largest logit (for a relative bound), the key slots seen, and
 * whether the tensor count stayed flat from step to step after the drop.
 */
export function decodingDeviation(
  decoder: () => StepDecoder,
  forward: (tokens: tf.Tensor2D) => tf.Tensor,
  opts: { vocabSize: number; steps: number; token: (rng: Prng) => number; dropAt: number; keep: number[] },
): { maxDiff: number; scale: number; slotsSeen: Set<number>; flat: boolean } {
  const { vocabSize: V, steps, dropAt } = opts;
  const rng = new Prng(2);
  const seqs = [0, 1, 2].map(() => Array.from({ length: steps + 5 }, () => opts.token(rng)));
  const promptLens = [5, 3, 4];
  const L = 5;
  const pad = promptLens.map((n) => L - n);
  const d = decoder();
  const tokens = seqs.map((s, b) => [...new Array(pad[b]).fill(PAD), ...s.slice(0, promptLens[b])]);
  const positions = pad.map((p) => Array.from({ length: L }, (_, i) => Math.max(0, i - p)));
  const bias = pad.map((p) => [Array.from({ length: L }, (_, i) => Array.from({ length: L }, (_, j) => (j > i || j < p ? BLOCKED : 0)))]);
  let logits = tf.tidy(() =>
    d.prefill(tf.tensor2d(tokens, undefined, 'int32'), tf.tensor2d(positions, undefined, 'int32'), tf.tensor4d(bias)),
  );
  let rows = [0, 1, 2];
  let maxDiff = 0;
  let scale = 0;
  const slotsSeen = new Set<number>();
  let perStep: number | undefined;
  let flat = true;
  for (let step = 0; step < steps; step++) {
    const got = logits.dataSync();
    rows.forEach((b, i) => {
      const n = promptLens[b] + step; // tokens seen by sequence b
      const full = tf.tidy(() => forward(tf.tensor2d([seqs[b].slice(0, n)], undefined, 'int32')).dataSync());
      const mine = got.subarray(i * V, (i + 1) * V);
      const ref = full.subarray((n - 1) * V, n * V);
      for (let j = 0; j < V; j++) {
        maxDiff = Math.max(maxDiff, Math.abs(mine[j] - ref[j]));
        scale = Math.max(scale, Math.abs(ref[j]));
      }
    });
    if (step === dropAt) {
      d.keepRows(opts.keep);
      rows = opts.keep.map((i) => rows[i]);
    }
    const Tk = L + step + 1; // keys after this step
    const slots = d.keySlots(); // Tk, or more for an in-place cache: those are blocked
    slotsSeen.add(slots);
    const next = tf.tidy(() =>
      d.step(
        tf.tensor2d(
          rows.map((b) => [seqs[b][promptLens[b] + step]]),
          undefined,
          'int32',
        ),
        tf.tensor2d(
          rows.map((b) => [promptLens[b] + step]),
          undefined,
          'int32',
        ),
        tf.tensor4d(rows.map((b) => [[Array.from({ length: slots }, (_, j) => (j < pad[b] || j >= Tk ? BLOCKED : 0))]])),
      ),
    );
    logits.dispose();
    logits = next;
    if (step > dropAt) {
      perStep ??= tf.memory().numTensors;
      if (tf.memory().numTensors !== perStep) flat = false;
    }
  }
  logits.dispose();
  d.dispose();
  return { maxDiff, scale, slotsSeen, flat };
}

/**
 * Asserts a loss's gradients (grads, by variable name) match central finite differences (step 1e-2)
 * on every variable of m: its largest-gradient entry and one entry drawn from rng, within
 * rel * max(|fd|, |g|) + abs. minLargest: also expects every variable's largest gradient above it.
 */
export function expectFiniteDifferenceGradients(
  m: { variables: tf.Variable[]; names: string[] },
  loss: () => tf.Scalar,
  grads: tf.NamedTensorMap,
  rng: Prng,
  tolerance: { rel: number; abs: number; minLargest?: number },
): void {
  const eps = 1e-2;
  let checked = 0;
  m.variables.forEach((v, vi) => {
    const g = grads[v.name].dataSync();
    // The largest-gradient entry and one random entry of every parameter.
    let big = 0;
    for (let i = 1; i < g.length; i++) if (Math.abs(g[i]) > Math.abs(g[big])) big = i;
    if (tolerance.minLargest !== undefined) expect(Math.abs(g[big])).toBeGreaterThan(tolerance.minLargest);
    for (const i of [big, rng.int(g.length)]) {
      const values = v.dataSync().slice() as Float32Array;
      const at = (delta: number) => {
        const moved = values.slice();
        moved[i] += delta;
        v.assign(tf.tensor(moved, v.shape));
        return tf.tidy(() => loss().dataSync()[0]);
      };
      const fd = (at(eps) - at(-eps)) / (2 * eps);
      v.assign(tf.tensor(values, v.shape));
      const tol = tolerance.rel * Math.max(Math.abs(fd), Math.abs(g[i])) + tolerance.abs;
      if (Math.abs(fd - g[i]) > tol) throw new Error(`${m.names[vi]}[${i}]: analytic ${g[i]} vs finite difference ${fd}`);
      checked++;
    }
  });
  expect(checked).toBe(2 * m.variables.length);
}

/** The largest |a[i] - b[i]|, expecting equal lengths. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}
