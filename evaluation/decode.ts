/**
 * Batched decoding where every row draws from its own Prng. model/sample's `generate` shares one
 * stream across the batch, so a row's sample there depends on its neighbours and on where they
 * stop; here a (problem, sample) stream gives the same tokens in any batch and under any budget,
 * which is what lets a budget sweep cut the very samples the untruncated run drew.
 */
import * as tf from '@tensorflow/tfjs';
import { sampleToken, type SampleOptions } from '../model/sample';
import { EOS, PAD } from '../model/tokenizer';
import { BLOCKED, type KVCache, type Transformer } from '../model/transformer';
import type { Prng } from '../util/prng';

/**
 * Continues each prefix until EOS, maxNewTokens, or the context is full (the same stopping rules
 * and KV-cache decoding as `generate`). Row b takes one uniform from rngs[b] per token (none when
 * greedy). Returns the new tokens of each row.
 */
export async function decodeRows(model: Transformer, prefixes: number[][], rngs: readonly Prng[], opts: SampleOptions): Promise<number[][]> {
  const { contextLength: C, vocabSize: V } = model.config;
  const B = prefixes.length;
  if (rngs.length !== B) throw new Error(`decodeRows: ${B} prefixes but ${rngs.length} streams`);
  prefixes.forEach((p, b) => {
    if (p.length === 0 || p.length > C) throw new Error(`decodeRows: prefix ${b} has ${p.length} tokens (need 1..${C})`);
  });
  const out: number[][] = prefixes.map(() => []);
  if (B === 0 || opts.maxNewTokens <= 0) return out;
  const L = Math.max(...prefixes.map((p) => p.length));
  const pad = prefixes.map((p) => L - p.length);

  const tokens = new Int32Array(B * L).fill(PAD);
  const positions = new Int32Array(B * L);
  const bias = new Float32Array(B * L * L);
  for (let b = 0; b < B; b++) {
    tokens.set(prefixes[b], b * L + pad[b]);
    for (let i = 0; i < L; i++) {
      positions[b * L + i] = Math.max(0, i - pad[b]);
      for (let j = 0; j < L; j++) if (j > i || j < pad[b]) bias[(b * L + i) * L + j] = BLOCKED;
    }
  }
  let { logits, cache } = tf.tidy(() => {
    const r = model.forwardCached(tf.tensor2d(tokens, [B, L], 'int32'), tf.tensor2d(positions, [B, L], 'int32'), tf.tensor4d(bias, [B, 1, L, L]), null);
    return { logits: r.logits.slice([0, L - 1, 0], [B, 1, V]), cache: r.cache };
  });

  const done = new Array<boolean>(B).fill(false);
  try {
    for (let Tk = L; ; Tk++) {
      const data = (await logits.data()) as Float32Array;
      logits.dispose();
      const next = new Int32Array(B).fill(PAD);
      const nextPos = new Int32Array(B);
      for (let b = 0; b < B; b++) {
        if (done[b]) continue;
        const token = sampleToken(data.subarray(b * V, (b + 1) * V), opts, rngs[b]);
        out[b].push(token);
        const length = prefixes[b].length + out[b].length;
        done[b] = token === EOS || out[b].length >= opts.maxNewTokens || length > C;
        if (done[b]) continue;
        next[b] = token;
        nextPos[b] = length - 1;
      }
      if (done.every(Boolean)) return out;
      const keyBias = new Float32Array(B * (Tk + 1));
      for (let b = 0; b < B; b++) keyBias.fill(BLOCKED, b * (Tk + 1), b * (Tk + 1) + pad[b]);
      const step: { logits: tf.Tensor3D; cache: KVCache } = tf.tidy(() =>
        model.forwardCached(tf.tensor2d(next, [B, 1], 'int32'), tf.tensor2d(nextPos, [B, 1], 'int32'), tf.tensor4d(keyBias, [B, 1, 1, Tk + 1]), cache),
      );
      disposeCache(cache);
      ({ logits, cache } = step);
    }
  } finally {
    logits.dispose();
    disposeCache(cache);
  }
}

/** Rows decoded so far in a phase ('sampling', 'budget 64', ...). */
export type Progress = (phase: string, done: number, total: number) => void | Promise<void>;

/** decodeRows over any number of rows, batchSize at a time. */
export async function decodeAll(
  model: Transformer,
  prefixes: number[][],
  rngs: readonly Prng[],
  opts: SampleOptions & { batchSize: number; phase?: string; onProgress?: Progress },
): Promise<number[][]> {
  const out: number[][] = [];
  for (let i = 0; i < prefixes.length; i += opts.batchSize) {
    out.push(...(await decodeRows(model, prefixes.slice(i, i + opts.batchSize), rngs.slice(i, i + opts.batchSize), opts)));
    await opts.onProgress?.(opts.phase ?? 'decoding', out.length, prefixes.length);
  }
  return out;
}

function disposeCache(cache: KVCache): void {
  for (const { k, v } of cache) tf.dispose([k, v]);
}
