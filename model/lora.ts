/**
 * LoRA (Hu et al. 2021) for the Llama family, as Hugging Face's PEFT defines it: a targeted projection
 * x W (W [in, out], frozen) becomes x W + scale (dropout(x) A) B, A [in, r] and B [r, out] trained,
 * scale = alpha / r. A starts as PEFT's kaiming_uniform_(a = sqrt(5)) — uniform in +-1/sqrt(in) — and B
 * at zero, so a fresh adapter leaves the model's function unchanged. Dropout applies to the adapter's
 * input only (the frozen path never sees it), inverted (kept values scaled by 1/(1-p)), and only in
 * training: its masks come from our seeded Prng, so a resumed run draws the same ones.
 *
 * Names: an adapter lives beside the weight it adapts, `h0.attn.wq.lora_a` [in, r] and
 * `h0.attn.wq.lora_b` [r, out] (our [in, out] layout; PEFT's files hold the transposes, formats/peft).
 * The defaults are PEFT's LoraConfig(): r 8, lora_alpha 8, lora_dropout 0, and q_proj/v_proj for
 * Llama-family models.
 */
import * as tf from '@tensorflow/tfjs';
import type { Prng } from '../util/prng';
import type { LlamaConfig } from './llama-config';
import { LORA_TARGETS, type LoraConfig, type LoraTarget } from './lora-config';
import type { NamedArrays } from './params';

/** The weight of a layer each target adapts (model/llama.ts names, after `h{l}.`). */
export const LORA_TARGET_WEIGHTS: Record<LoraTarget, string> = {
  q: 'attn.wq',
  k: 'attn.wk',
  v: 'attn.wv',
  o: 'attn.wo',
  gate: 'mlp.wg',
  up: 'mlp.wu',
  down: 'mlp.wd',
};

/** A model's adapters: their hyper-parameters and values by name (`loraParamShapes`). */
export interface LoraAdapters {
  config: LoraConfig;
  weights: NamedArrays;
}

export function loraScale(c: LoraConfig): number {
  return c.alpha / c.rank;
}

/** The config's targets in canonical order (the order of the adapters' names), whatever order it lists them in. */
export function loraTargets(c: LoraConfig): LoraTarget[] {
  return LORA_TARGETS.filter((t) => c.targets.includes(t));
}

/** [in, out] of the weight a target adapts. */
export function targetShape(c: LlamaConfig, t: LoraTarget): [number, number] {
  const { dModel: D, nHeads: H, nKvHeads: G, headDim: K, dFF: F } = c;
  const shapes: Record<LoraTarget, [number, number]> = {
    q: [D, H * K],
    k: [D, G * K],
    v: [D, G * K],
    o: [H * K, D],
    gate: [D, F],
    up: [D, F],
    down: [F, D],
  };
  return shapes[t];
}

/** Names of the adapter of a base weight (`h0.attn.wq` -> `h0.attn.wq.lora_a`, `.lora_b`). */
export function loraNames(weight: string): { a: string; b: string } {
  return { a: `${weight}.lora_a`, b: `${weight}.lora_b` };
}

/** Every adapted base weight with its target and layer, layer by layer, targets in canonical order. */
export function adaptedWeights(c: LlamaConfig, lora: LoraConfig): { weight: string; target: LoraTarget; layer: number }[] {
  const targets = loraTargets(lora);
  return Array.from({ length: c.nLayers }, (_, layer) =>
    targets.map((target) => ({ weight: `h${layer}.${LORA_TARGET_WEIGHTS[target]}`, target, layer })),
  ).flat();
}

/** Every adapter's name and shape, in a fixed order: A [in, r] then B [r, out] per adapted weight. */
export function loraParamShapes(c: LlamaConfig, lora: LoraConfig): [string, number[]][] {
  return adaptedWeights(c, lora).flatMap(({ weight, target }) => {
    const [inDim, outDim] = targetShape(c, target);
    const { a, b } = loraNames(weight);
    return [
      [a, [inDim, lora.rank]],
      [b, [lora.rank, outDim]],
    ] as [string, number[]][];
  });
}

/**
 * Fresh adapters as PEFT initialises them (init_lora_weights=True): A uniform in +-1/sqrt(in) (kaiming
 * uniform with a = sqrt(5), fan_in = in), drawn from `rng` in `loraParamShapes` order, row-major in
 * our [in, r] layout; B zero.
 */
export function initLoraWeights(c: LlamaConfig, lora: LoraConfig, rng: Prng): NamedArrays {
  return Object.fromEntries(
    loraParamShapes(c, lora).map(([name, [rows, cols]]) => {
      const v = new Float32Array(rows * cols);
      if (name.endsWith('.lora_a')) {
        const bound = 1 / Math.sqrt(rows);
        for (let i = 0; i < v.length; i++) v[i] = (2 * rng.next() - 1) * bound;
      }
      return [name, v];
    }),
  );
}

/**
 * An inverted-dropout mask [rows, cols]: each element 0 with probability p, else 1/(1-p), one uint32
 * of `rng` per element in row-major order (so the stream advances by rows*cols).
 */
export function dropoutMask(rng: Prng, rows: number, cols: number, p: number): tf.Tensor2D {
  const keep = 1 / (1 - p);
  const threshold = p * 2 ** 32; // P(u32 >= threshold) = 1 - p (to 2^-32)
  const mask = new Float32Array(rows * cols);
  for (let i = 0; i < mask.length; i++) mask[i] = rng.nextU32() >= threshold ? keep : 0;
  return tf.tensor2d(mask, [rows, cols]);
}

/** The adapter's term scale (x A) B for rows x [N, in], x already dropped out where training. */
export function loraDelta(x: tf.Tensor, a: tf.Tensor, b: tf.Tensor, scale: number): tf.Tensor {
  return tf.matMul(tf.matMul(x, a).mul(scale), b);
}

/** W + scale A B: the weight that computes x W + scale (x A) B in one product. */
export function mergeLora(w: tf.Tensor, a: tf.Tensor, b: tf.Tensor, scale: number): tf.Tensor {
  return tf.tidy(() => w.add(tf.matMul(a.mul(scale), b)));
}
