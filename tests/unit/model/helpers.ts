import * as tf from '@tensorflow/tfjs';
import { beforeAll } from 'vitest';
import { initBackend } from '../../../model/backend';
import { modelConfig, type ModelConfig } from '../../../model/config';
import { Decoder, type CacheMode } from '../../../model/decode';
import { PAD } from '../../../model/tokenizer';
import { BLOCKED, type Transformer } from '../../../model/transformer';
import { Prng } from '../../../util/prng';

/** Unit tests run on wasm: the realistic CI backend. */
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
  const V = m.config.vocabSize;
  const rng = new Prng(2);
  const seqs = [0, 1, 2].map(() => Array.from({ length: steps + 5 }, () => 6 + rng.int(95)));
  const promptLens = [5, 3, 4];
  const L = 5;
  const pad = promptLens.map((n) => L - n);
  const decoder = new Decoder(m, mode);
  const tokens = seqs.map((s, b) => [...new Array(pad[b]).fill(PAD), ...s.slice(0, promptLens[b])]);
  const positions = pad.map((p) => Array.from({ length: L }, (_, i) => Math.max(0, i - p)));
  const bias = pad.map((p) => [Array.from({ length: L }, (_, i) => Array.from({ length: L }, (_, j) => (j > i || j < p ? BLOCKED : 0)))]);
  let logits = tf.tidy(() =>
    decoder.prefill(tf.tensor2d(tokens, undefined, 'int32'), tf.tensor2d(positions, undefined, 'int32'), tf.tensor4d(bias)),
  );
  let rows = [0, 1, 2];
  let maxDiff = 0;
  let scale = 0;
  for (let step = 0; step < steps; step++) {
    const got = logits.dataSync();
    rows.forEach((b, i) => {
      const n = promptLens[b] + step; // tokens seen by sequence b
      const full = tf.tidy(() => m.forward(tf.tensor2d([seqs[b].slice(0, n)], undefined, 'int32')).dataSync());
      const mine = got.subarray(i * V, (i + 1) * V);
      const ref = full.subarray((n - 1) * V, n * V);
      for (let j = 0; j < V; j++) {
        maxDiff = Math.max(maxDiff, Math.abs(mine[j] - ref[j]));
        scale = Math.max(scale, Math.abs(ref[j]));
      }
    });
    if (step === 40) {
      decoder.keepRows([0, 2]);
      rows = [0, 2];
    }
    const Tk = L + step + 1; // keys after this step
    const slots = decoder.keySlots(); // Tk, or more for an in-place cache: those are blocked
    const next = tf.tidy(() =>
      decoder.step(
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
  }
  logits.dispose();
  decoder.dispose();
  return { maxDiff, scale };
}
