/**
 * A GPT-style decoder-only transformer on raw tf variables (no tf.layers): token + learned
 * position embeddings, pre-norm blocks (causal multi-head attention, GELU MLP), a final layer norm
 * and an output head that may share the token embedding matrix. Linear layers have no bias
 * (nanoGPT's bias=False: as good, and the bias gradients are slow column sums on wasm).
 *
 * Shapes: B batch, T sequence, N = B*T rows, D dModel, H heads, K = D/H head size, F dFF, V vocab.
 * The residual stream is kept as [N, D] so every projection is one plain 2-D matMul.
 */
import * as tf from '@tensorflow/tfjs';
import { Prng } from '../util/prng';
import type { ModelConfig } from './config';
import { Decoder } from './decode';
import { NamedVariables, type NamedArrays, type Trainable } from './params';
import type { Decodable, Policy } from './policy';
import { paramShapes } from './shapes';
import { EOS, tokenizerOf, type Tokenizer } from './tokenizer';

export type { NamedArrays } from './params';

/** Additive attention bias for blocked positions: large but finite, so a fully blocked row stays finite. */
export const BLOCKED = -1e9;

/** GPT-2 init: N(0, initStd) matrices, residual output projections shrunk by 1/sqrt(2 nLayers); unit gains, zero shifts. */
function initValue(c: ModelConfig, name: string, size: number, rng: Prng): Float32Array {
  const out = new Float32Array(size);
  if (name.endsWith('.g')) return out.fill(1);
  if (name.endsWith('.b')) return out;
  const residual = name.endsWith('.wo') || name.endsWith('.w2');
  const std = residual ? c.initStd / Math.sqrt(2 * c.nLayers) : c.initStd;
  for (let i = 0; i < size; i++) out[i] = std * rng.normal();
  return out;
}

/** Float one-hot rows. Built as int32 then cast: wasm's OneHot kernel writes int bits into a float32 output. */
export function oneHotFloat(indices: tf.Tensor, depth: number): tf.Tensor {
  return tf.tidy(() => tf.oneHot(indices, depth).cast('float32'));
}

/**
 * Exact GELU, x * Phi(x), with its backward written out (Phi(x) + x * phi(x)): half the kernels
 * of autodiff through the composite, on the widest activation in the model. (Forward temporaries
 * are tidied: inside a custom gradient they would otherwise live until the whole backward ends.)
 */
const gelu = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const [x, save] = args as [tf.Tensor, tf.GradSaveFunc];
  const cdf = tf.tidy(() => tf.erf(x.mul(Math.SQRT1_2)).add(1).mul(0.5));
  save([x, cdf]);
  return {
    value: x.mul(cdf),
    gradFunc: (dy: tf.Tensor, [xs, cdfs]: tf.Tensor[]) => {
      const pdf = xs
        .square()
        .mul(-0.5)
        .exp()
        .mul(1 / Math.sqrt(2 * Math.PI));
      return dy.mul(xs.mul(pdf).add(cdfs));
    },
  };
}) as (x: tf.Tensor) => tf.Tensor;

/**
 * Layer norm over the last axis of x [N, D], built from broadcasting ops (tf.layers' version
 * trains pathologically), with the textbook backward
 *   dx = rstd * (dxh - mean(dxh) - xh * mean(dxh * xh)),  dxh = dy * g,
 * and the gain/shift gradients as ones[1,N] @ (.) products: a column sum is slow on wasm.
 */
function makeLayerNorm(eps: number) {
  return tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [x, g, b, save] = args as [tf.Tensor, tf.Tensor, tf.Tensor, tf.GradSaveFunc];
    const [xh, rstd] = tf.tidy(() => normalized(x, eps));
    save([xh, rstd, g]);
    return {
      value: xh.mul(g).add(b),
      gradFunc: (dy: tf.Tensor, [xhs, rstds, gs]: tf.Tensor[]) => {
        const dxh = dy.mul(gs);
        const dx = dxh
          .sub(dxh.mean(-1, true))
          .sub(xhs.mul(dxh.mul(xhs).mean(-1, true)))
          .mul(rstds);
        const ones = tf.ones([1, dy.shape[0]]);
        return [dx, tf.matMul(ones, dy.mul(xhs)).reshape(gs.shape), tf.matMul(ones, dy).reshape(gs.shape)];
      },
    };
  }) as (x: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tf.Tensor;
}

/** x normalised over its last axis, and 1 / std: the forward half of layer norm. */
function normalized(x: tf.Tensor, eps: number): [tf.Tensor, tf.Tensor] {
  const xc = x.sub(x.mean(-1, true));
  const r = xc.square().mean(-1, true).add(eps).rsqrt();
  return [xc.mul(r), r];
}

export class Transformer extends NamedVariables implements Policy {
  readonly config: ModelConfig;
  private readonly layerNorm: (x: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tf.Tensor;
  private causal: tf.Tensor2D | null = null;

  /** Random init from a Prng, or exact values by name (a checkpoint, a clone). */
  constructor(config: ModelConfig, init: Prng | NamedArrays) {
    super(paramShapes(config), (name, size) => (init instanceof Prng ? initValue(config, name, size, init) : init[name]));
    this.config = config;
    this.layerNorm = makeLayerNorm(config.layerNormEps);
  }

  /** Its character tokenizer (the config's alphabet): prompts as [BOS] prompt [RESP], answers after ANS. */
  get format(): Tokenizer {
    return tokenizerOf(this.config);
  }

  decodable(): Decodable {
    return { contextLength: this.config.contextLength, vocabSize: this.config.vocabSize, eos: EOS, decoder: () => new Decoder(this) };
  }

  scorer(): Decoder {
    return new Decoder(this);
  }

  /** Full causal forward pass: int32 tokens [B,T] (T <= contextLength) -> logits [B,T,V]. Generation uses model/decode. No dropout. */
  forward(tokens: tf.Tensor2D): tf.Tensor3D {
    const T = tokens.shape[1];
    if (T > this.config.contextLength) throw new Error(`sequence length ${T} exceeds contextLength ${this.config.contextLength}`);
    return tf.tidy(() => {
      const { vocabSize: V, dModel: D, nLayers } = this.config;
      const B = tokens.shape[0];
      const p = this.p;
      // The embedding lookup as one-hot @ wte, whose gradient is a matMul (wasm has no kernel for gather's gradient).
      let x = tf
        .matMul(oneHotFloat(tokens.flatten(), V), p.wte)
        .reshape([B, T, D])
        .add(p.wpe.slice([0, 0], [T, D]).expandDims(0))
        .reshape([B * T, D]);
      const bias = this.causalBias(T);
      for (let l = 0; l < nLayers; l++) {
        x = x.add(this.attention(this.layerNorm(x, p[`h${l}.ln1.g`], p[`h${l}.ln1.b`]), l, B, T, bias));
        const h = gelu(tf.matMul(this.layerNorm(x, p[`h${l}.ln2.g`], p[`h${l}.ln2.b`]), p[`h${l}.mlp.w1`]));
        x = x.add(tf.matMul(h, p[`h${l}.mlp.w2`]));
      }
      const head = this.config.tieEmbeddings ? p.wte.transpose() : p.head;
      return tf.matMul(this.layerNorm(x, p['lnf.g'], p['lnf.b']), head).reshape([B, T, V]) as tf.Tensor3D;
    });
  }

  private attention(x: tf.Tensor, l: number, B: number, T: number, bias: tf.Tensor): tf.Tensor {
    const { dModel: D, nHeads: H } = this.config;
    const K = D / H;
    const proj = (w: string) => tf.matMul(x, this.p[`h${l}.attn.${w}`]).reshape([B, T, H, K]);
    const q = proj('wq')
      .transpose([0, 2, 1, 3])
      .mul(1 / Math.sqrt(K)); // [B,H,T,K], scaled here: smaller than the scores
    const v = proj('wv').transpose([0, 2, 1, 3]); // [B,H,T,K]
    // Keys transposed once to [B,H,K,T], so q k^T and both its gradients are cheap on wasm.
    const att = tf.softmax(tf.matMul(q, proj('wk').transpose([0, 2, 3, 1])).add(bias));
    const y = tf
      .matMul(att, v)
      .transpose([0, 2, 1, 3])
      .reshape([B * T, D]);
    return tf.matMul(y, this.p[`h${l}.attn.wo`]);
  }

  /** [T,T] additive causal mask: a slice of one [C,C] mask built on first use and kept until dispose(). */
  causalBias(T: number): tf.Tensor2D {
    const C = this.config.contextLength;
    if (!this.causal) {
      const data = new Float32Array(C * C);
      for (let i = 0; i < C; i++) data.fill(BLOCKED, i * C + i + 1, (i + 1) * C);
      this.causal = tf.keep(tf.tensor2d(data, [C, C]));
    }
    return T === C ? this.causal : this.causal.slice([0, 0], [T, T]);
  }

  /** An independent copy (own variables) with the same config and weights. */
  clone(): Transformer {
    return new Transformer(this.config, this.getWeights());
  }

  override dispose(): void {
    super.dispose();
    this.causal?.dispose();
    this.causal = null;
  }

  protected override checkCompatible(other: Trainable): void {
    if (!(other instanceof Transformer) || JSON.stringify(other.config) !== JSON.stringify(this.config))
      throw new Error('models have different configs');
  }
}
