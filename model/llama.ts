/**
 * The Llama family (Llama 2/3, Mistral, Qwen2, SmolLM2) on raw tf variables, in the style of our
 * own transformer: token embeddings, pre-norm blocks of RMSNorm -> grouped-query attention with
 * rotary position embeddings -> RMSNorm -> SwiGLU MLP, a final RMSNorm and an output head that may
 * be the embedding matrix. Matrices are stored [in, out] so every projection is x @ W; the
 * pretrained formats' [out, in] layouts are converted on load and export (formats/llama-weights).
 *
 * Shapes: B batch, T sequence, N = B*T rows, D dModel, H query heads, G key/value heads, R = H/G
 * query heads per key/value head, K head size, F dFF, V vocab.
 *
 * RoPE follows transformers' layout (rotate_half: the head's first half pairs with its second
 * half), not llama.cpp's interleaved one; GGUF's permuted q/k rows are undone on load.
 *
 * With LoRA adapters (model/lora.ts) the base weights are frozen and the adapters are the model's
 * variables: see the constructor.
 */
import * as tf from '@tensorflow/tfjs';
import type { Prng } from '../util/prng';
import type { LlamaConfig } from './llama-config';
import { adaptedWeights, dropoutMask, loraDelta, loraNames, loraParamShapes, loraScale, mergeLora, type LoraAdapters } from './lora';
import type { LoraConfig } from './lora-config';
import { NamedVariables, type NamedArrays } from './params';
import { llamaParamShapes } from './shapes';
import { BLOCKED } from './transformer';

/**
 * RoPE's inverse frequencies theta^(-2i/K), i < K/2, with Llama 3's scaling where configured:
 * wavelengths longer than originalContextLength/lowFreqFactor are slowed by `factor`, shorter
 * than originalContextLength/highFreqFactor kept, and those between blended smoothly. float32, as
 * transformers computes them, so positions agree to the last bits that matter.
 */
export function ropeInverseFrequencies(c: LlamaConfig): Float32Array {
  const half = c.headDim / 2;
  const inv = new Float32Array(half);
  for (let i = 0; i < half; i++) inv[i] = 1 / Math.pow(c.ropeTheta, Math.fround((2 * i) / c.headDim));
  const s = c.ropeScaling;
  if (!s) return inv;
  const lowWavelen = s.originalContextLength / s.lowFreqFactor;
  const highWavelen = s.originalContextLength / s.highFreqFactor;
  return inv.map((f) => {
    const wavelen = (2 * Math.PI) / f;
    if (wavelen < highWavelen) return f;
    if (wavelen > lowWavelen) return f / s.factor;
    const smooth = (s.originalContextLength / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
    return (1 - smooth) * (f / s.factor) + smooth * f;
  });
}

/** cos and sin of position * frequency, each [T, K] (the K/2 angles repeated for both halves of a head). */
export function ropeTables(c: LlamaConfig, start: number, T: number): { cos: Float32Array; sin: Float32Array } {
  const inv = ropeInverseFrequencies(c);
  const K = c.headDim;
  const cos = new Float32Array(T * K);
  const sin = new Float32Array(T * K);
  for (let t = 0; t < T; t++) {
    for (let i = 0; i < K / 2; i++) {
      const angle = Math.fround((start + t) * inv[i]);
      cos[t * K + i] = cos[t * K + i + K / 2] = Math.cos(angle);
      sin[t * K + i] = sin[t * K + i + K / 2] = Math.sin(angle);
    }
  }
  return { cos, sin };
}

/**
 * Rotates x [B, T, heads, K] by the angles of its positions: x cos + rotate_half(x) sin, where
 * rotate_half([a, b]) = [-b, a] over the head's halves. cos/sin are [T, 1, K] (broadcast over B and heads).
 */
export function applyRope(x: tf.Tensor, cos: tf.Tensor, sin: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const K = x.shape[x.rank - 1];
    const [a, b] = tf.split(x, [K / 2, K / 2], -1);
    return x.mul(cos).add(tf.concat([b.neg(), a], -1).mul(sin));
  });
}

/** RMSNorm over the last axis: x / sqrt(mean(x^2) + eps) * g (no mean subtraction, no shift). */
export function rmsNorm(x: tf.Tensor, g: tf.Tensor, eps: number): tf.Tensor {
  return tf.tidy(() => x.mul(x.square().mean(-1, true).add(eps).rsqrt()).mul(g));
}

/**
 * Embedding rows by token id. Its gradient scatters into the rows, which wasm has no kernel for:
 * there it is the one-hot product instead (the same values, at the cost of an [N, V] matrix).
 */
const embed = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const [wte, ids, save] = args as [tf.Tensor2D, tf.Tensor1D, tf.GradSaveFunc];
  save([ids]);
  return {
    value: tf.gather(wte, ids),
    gradFunc: (dy: tf.Tensor, [idsSaved]: tf.Tensor[]) => {
      const V = wte.shape[0];
      const dWte = tf.getKernel('UnsortedSegmentSum', tf.getBackend())
        ? tf.unsortedSegmentSum(dy, idsSaved as tf.Tensor1D, V)
        : tf.matMul(tf.oneHot(idsSaved as tf.Tensor1D, V).cast('float32'), dy, true, false);
      return [dWte, tf.zerosLike(idsSaved)];
    },
  };
}) as (wte: tf.Tensor2D, ids: tf.Tensor1D) => tf.Tensor2D;

/** SiLU-gated MLP: (silu(x Wg) * (x Wu)) Wd, `linear(x, w)` being x times the layer's mlp weight w. */
function swiglu(x: tf.Tensor, linear: (x: tf.Tensor, w: 'wg' | 'wu' | 'wd') => tf.Tensor): tf.Tensor {
  const gate = linear(x, 'wg');
  return linear(gate.mul(tf.sigmoid(gate)).mul(linear(x, 'wu')), 'wd');
}

export interface LlamaForwardOptions {
  /**
   * Training: the LoRA adapters' dropout masks are drawn from this stream (in layer order, and within
   * a layer q, k, v, o, gate, up, down), so a resumed run draws the same masks. Absent: no dropout.
   * Untouched without adapters or at dropout 0.
   */
  dropout?: Prng;
}

export class Llama extends NamedVariables {
  readonly config: LlamaConfig;
  /** The adapters' hyper-parameters; undefined for a plain model. */
  readonly lora?: LoraConfig;
  /** The frozen base weights of a model with adapters (not in `variables`). */
  private readonly frozen: tf.Variable[] = [];

  /**
   * Exact values by name (a pretrained base, a checkpoint, a clone). With `lora`, the model trains
   * adapters on a frozen base: `variables`, `names`, `paramCount` and `getWeights` are then the
   * adapters only — what an optimizer updates and a checkpoint stores next to a reference to its
   * base — while the base weights are non-trainable variables, still readable by `weight(name)`
   * (and `baseWeights`), that no gradient reaches. `mergedWeights` gives the base with the adapters
   * merged (exports, the decoder). Without `lora` every weight is a variable, as before.
   */
  constructor(config: LlamaConfig, weights: NamedArrays, lora?: LoraAdapters) {
    super(lora ? loraParamShapes(config, lora.config) : llamaParamShapes(config), (name) => (lora ? lora.weights : weights)[name]);
    this.config = config;
    if (!lora) return;
    this.lora = lora.config;
    const known = new Set(this.names);
    const stray = Object.keys(lora.weights).find((n) => !known.has(n));
    if (stray) throw new Error(`LoRA weights: "${stray}" is not an adapter of this config (targets ${lora.config.targets.join(', ')})`);
    for (const [name, shape] of llamaParamShapes(config)) {
      const value = weights[name];
      if (!value || value.length !== tf.util.sizeFromShape(shape)) throw new Error(`weights: "${name}" missing or not of shape [${shape}]`);
      this.frozen.push((this.p[name] = tf.tidy(() => tf.variable(tf.tensor(value, shape, 'float32'), false))));
    }
  }

  /**
   * Full causal forward pass: int32 tokens [B,T] at positions 0..T-1 -> logits [B,T,V]. Adapted
   * projections compute x W + scale (dropout(x) A) B (W itself never copied or merged).
   */
  forward(tokens: tf.Tensor2D, options: LlamaForwardOptions = {}): tf.Tensor3D {
    const [B, T] = tokens.shape;
    if (T > this.config.contextLength) throw new Error(`sequence length ${T} exceeds contextLength ${this.config.contextLength}`);
    const dropout = this.lora && this.lora.dropout > 0 ? options.dropout : undefined;
    return tf.tidy(() => {
      const { vocabSize: V, headDim: K, nLayers, rmsEps } = this.config;
      const p = this.p;
      const { cos, sin } = ropeTables(this.config, 0, T);
      const rope = { cos: tf.tensor3d(cos, [T, 1, K]), sin: tf.tensor3d(sin, [T, 1, K]) };
      let x: tf.Tensor = embed(p.wte as tf.Tensor2D, tokens.flatten()); // [N, D]
      for (let l = 0; l < nLayers; l++) {
        x = x.add(this.attention(rmsNorm(x, p[`h${l}.ln1.g`], rmsEps), l, B, T, rope, dropout));
        x = x.add(swiglu(rmsNorm(x, p[`h${l}.ln2.g`], rmsEps), (h, w) => this.linear(h, `h${l}.mlp.${w}`, dropout)));
      }
      const h = rmsNorm(x, p['lnf.g'], rmsEps);
      const logits = this.config.tieEmbeddings ? tf.matMul(h, p.wte, false, true) : tf.matMul(h, p.head);
      return logits.reshape([B, T, V]) as tf.Tensor3D;
    });
  }

  /**
   * Grouped-query attention without copying keys and values per query head: the R query heads
   * that share a key/value head are stacked along the time axis, [B, G, R*T, K], so one batched
   * product per group scores them all against that group's keys [B, G, K, T].
   */
  private attention(x: tf.Tensor, l: number, B: number, T: number, rope: { cos: tf.Tensor; sin: tf.Tensor }, dropout?: Prng): tf.Tensor {
    const { nHeads: H, nKvHeads: G, headDim: K } = this.config;
    const R = H / G;
    const p = this.p;
    const proj = (w: string, heads: number) =>
      this.linear(x, `h${l}.attn.w${w}`, dropout, this.config.qkvBias ? p[`h${l}.attn.b${w}`] : undefined).reshape([B, T, heads, K]);
    const q = applyRope(proj('q', H), rope.cos, rope.sin)
      .mul(1 / Math.sqrt(K))
      .reshape([B, T, G, R, K])
      .transpose([0, 2, 3, 1, 4])
      .reshape([B, G, R * T, K]);
    const k = applyRope(proj('k', G), rope.cos, rope.sin).transpose([0, 2, 3, 1]); // [B,G,K,T]
    const v = proj('v', G).transpose([0, 2, 1, 3]); // [B,G,T,K]
    const att = tf.softmax(tf.matMul(q, k).add(causalBias(T, R)));
    const y = tf
      .matMul(att, v) // [B,G,R*T,K]
      .reshape([B, G, R, T, K])
      .transpose([0, 3, 1, 2, 4])
      .reshape([B * T, H * K]);
    return this.linear(y, `h${l}.attn.wo`, dropout);
  }

  /** x W (+ bias), plus scale (dropout(x) A) B where W has an adapter (PEFT's order: the adapter's term last). */
  private linear(x: tf.Tensor, name: string, dropout?: Prng, bias?: tf.Tensor): tf.Tensor {
    const y = bias ? tf.matMul(x, this.p[name]).add(bias) : tf.matMul(x, this.p[name]);
    const { a, b } = loraNames(name);
    if (!this.lora || !this.p[a]) return y;
    const [N, inDim] = x.shape;
    const dropped = dropout ? x.mul(dropoutMask(dropout, N, inDim, this.lora.dropout)) : x;
    return y.add(loraDelta(dropped, this.p[a], this.p[b], loraScale(this.lora)));
  }

  /**
   * The adapted base weights with their adapters merged, W + scale A B, by base name: new tensors,
   * the caller's to dispose ({} without adapters). Every other weight is `weight(name)`.
   */
  mergedTensors(): Record<string, tf.Tensor> {
    const lora = this.lora;
    if (!lora) return {};
    const scale = loraScale(lora);
    return Object.fromEntries(
      adaptedWeights(this.config, lora).map(({ weight }) => {
        const { a, b } = loraNames(weight);
        return [weight, mergeLora(this.p[weight], this.p[a], this.p[b], scale)];
      }),
    );
  }

  /** Every base weight by name with the adapters merged in: a plain model's weights (exports, the decoder). */
  mergedWeights(): NamedArrays {
    const merged = this.mergedTensors();
    try {
      return this.readAll((name) => merged[name] ?? this.p[name]);
    } finally {
      tf.dispose(Object.values(merged));
    }
  }

  /** Every base weight by name, without the adapters (for a plain model, `getWeights()`). */
  baseWeights(): NamedArrays {
    return this.readAll((name) => this.p[name]);
  }

  override dispose(): void {
    super.dispose();
    tf.dispose(this.frozen);
  }

  private readAll(tensor: (name: string) => tf.Tensor): NamedArrays {
    // copies: cpu hands out its own buffer
    return Object.fromEntries(llamaParamShapes(this.config).map(([name]) => [name, (tensor(name).dataSync() as Float32Array).slice()]));
  }
}

/** [R*T, T] additive causal mask: R copies of the [T, T] one, one per query head stacked along time. */
function causalBias(T: number, R: number): tf.Tensor2D {
  const data = new Float32Array(R * T * T);
  for (let r = 0; r < R; r++) for (let i = 0; i < T; i++) data.fill(BLOCKED, (r * T + i) * T + i + 1, (r * T + i + 1) * T);
  return tf.tensor2d(data, [R * T, T]);
}
