/**
 * The transformer's forward pass for generation: inference only, with a KV cache, built for few
 * large ops per token. On a native backend a decode step at small batch is a chain of tiny ops,
 * each paying the binding's overhead, so the weights are rearranged once per generate call:
 *  - layer norm gains and shifts are folded into the matrix that follows (LN(x) W = xh (g W) + b W),
 *    and means are products with a [D,1] column (a cheaper kernel than a reduction);
 *  - q, k and v come from one fused [D,3D] product, the 1/sqrt(K) attention scale folded into q;
 *  - GELU's 1/sqrt(2) and 1/2 are folded into w1 and w2: gelu(h w1) w2 = (u + u erf(u)) (w2/sqrt 2),
 *    u = h w1/sqrt(2);
 *  - the tied output head is transposed once.
 * The cache (model/kv-cache.ts) is preallocated and written in place on the tensorflow backend,
 * grown by concatenation elsewhere.
 * Same function as Transformer.forward up to float rounding (tested against it, both modes).
 *
 * Shapes: n rows in the batch, Tq new tokens per row, Tk keys, D dModel, H heads, K = D/H.
 */
import * as tf from '@tensorflow/tfjs';
import { KvCache, KvDecoder, lastPositions, type CacheMode } from './kv-cache';
import type { ModelConfig } from './config';

/** What the decoder reads of our transformer (model/transformer.ts): its config, weights and causal bias. */
export interface DecoderModel {
  readonly config: ModelConfig;
  weight(name: string): tf.Tensor;
  causalBias(T: number): tf.Tensor2D;
}

export { GROW, type CacheMode } from './kv-cache';

interface Layer {
  wqkv: tf.Tensor2D;
  cqkv: tf.Tensor2D;
  wo: tf.Tensor2D;
  w1: tf.Tensor2D;
  c1: tf.Tensor2D;
  w2: tf.Tensor2D;
}

export class Decoder extends KvDecoder {
  private readonly layers: Layer[];
  private readonly wte: tf.Tensor2D;
  private readonly wpe: tf.Tensor2D;
  private readonly head: tf.Tensor2D;
  private readonly cHead: tf.Tensor2D;
  /** [D,1] column of 1/D: a row mean as a matMul. */
  private readonly meanCol: tf.Tensor2D;
  private readonly eps: tf.Scalar;
  private readonly one: tf.Scalar;
  /** Tensors made here (the rest are the model's variables). */
  private readonly owned: tf.Tensor[];

  /** mode: default in place on the tensorflow backend (the only one with InplaceUpdate), else append. */
  constructor(
    private readonly model: DecoderModel,
    mode?: CacheMode,
  ) {
    super(new KvCache(model.config.nHeads, model.config.dModel / model.config.nHeads, 'Decoder', mode)); // H heads of K = D/H per row
    const c = model.config;
    const { dModel: D, nHeads: H } = c;
    const w = (name: string) => model.weight(name);
    const made = tf.tidy(() => {
      // LN(x) W = xh (diag(g) W) + b W.
      const fold = (prefix: string, m: tf.Tensor) => ({
        w: w(`${prefix}.g`).reshape([D, 1]).mul(m) as tf.Tensor2D,
        c: w(`${prefix}.b`)
          .reshape([1, D])
          .matMul(m as tf.Tensor2D) as tf.Tensor2D,
      });
      const layers = Array.from({ length: c.nLayers }, (_, l) => {
        const p = `h${l}`;
        const qkv = fold(`${p}.ln1`, tf.concat([w(`${p}.attn.wq`).mul(1 / Math.sqrt(D / H)), w(`${p}.attn.wk`), w(`${p}.attn.wv`)], 1));
        const mlp = fold(`${p}.ln2`, w(`${p}.mlp.w1`).mul(Math.SQRT1_2));
        return { wqkv: qkv.w, cqkv: qkv.c, w1: mlp.w, c1: mlp.c, w2: w(`${p}.mlp.w2`).mul(Math.SQRT1_2) as tf.Tensor2D };
      });
      const head = fold('lnf', c.tieEmbeddings ? w('wte').transpose() : w('head'));
      return { layers, head, meanCol: tf.fill([D, 1], 1 / D) as tf.Tensor2D, eps: tf.scalar(c.layerNormEps), one: tf.scalar(1) };
    });
    this.owned = [...made.layers.flatMap((l) => Object.values(l)), made.head.w, made.head.c, made.meanCol, made.eps, made.one];
    this.layers = made.layers.map((l, i) => ({ ...l, wo: w(`h${i}.attn.wo`) as tf.Tensor2D }));
    this.head = made.head.w;
    this.cHead = made.head.c;
    this.meanCol = made.meanCol;
    this.eps = made.eps;
    this.one = made.one;
    this.wte = w('wte') as tf.Tensor2D;
    this.wpe = w('wpe') as tf.Tensor2D;
  }

  /**
   * Logits at every position of whole sequences, int32 [n,T] -> [n,T,V], causal, no cache: scoring
   * without gradients (the anchor's log-probs), the same function as Transformer.forward.
   */
  logits(tokens: tf.Tensor2D): tf.Tensor3D {
    const [n, T] = tokens.shape;
    const { dModel: D, vocabSize: V } = this.model.config;
    return tf.tidy(() => {
      const bias = this.model.causalBias(T);
      let x = tf
        .gather(this.wte, tokens.flatten())
        .reshape([n, T, D])
        .add(this.wpe.slice([0, 0], [T, D]))
        .reshape([n * T, D]);
      for (const layer of this.layers) {
        const h = this.normalized(x);
        x = this.mlp(x.add(this.selfAttention(tf.split(h.matMul(layer.wqkv).add(layer.cqkv), 3, 1), layer, n, T, bias).y), layer);
      }
      return this.normalized(x).matMul(this.head).add(this.cHead).reshape([n, T, V]) as tf.Tensor3D;
    });
  }

  override dispose(): void {
    super.dispose();
    tf.dispose(this.owned);
  }

  protected run(tokens: tf.Tensor2D, positions: tf.Tensor2D, bias: tf.Tensor, start: boolean): tf.Tensor2D {
    const [n, Tq] = tokens.shape;
    let x = tf.gather(this.wte, tokens.flatten()).add(tf.gather(this.wpe, positions.flatten())); // [n*Tq, D]
    this.layers.forEach((layer, l) => {
      const qkv = tf.split(this.normalized(x).matMul(layer.wqkv).add(layer.cqkv), 3, 1); // [n*Tq, D] each
      let y: tf.Tensor;
      if (start) {
        // The prompts, attending among themselves; their keys and values start the cache.
        const a = this.selfAttention(qkv, layer, n, Tq, bias);
        this.kv.store(l, a.k, a.v);
        y = a.y;
      } else y = this.attentionStep(qkv, layer, n, Tq, bias, l);
      x = this.mlp(x.add(y), layer);
    });
    return this.normalized(lastPositions(x, n, Tq))
      .matMul(this.head)
      .add(this.cHead) as tf.Tensor2D;
  }

  /** (x - mean) / std over the last axis of x [N,D] (gain and shift live in the next matrix). */
  private normalized(x: tf.Tensor): tf.Tensor {
    const xc = x.sub(x.matMul(this.meanCol));
    return xc.mul(xc.square().matMul(this.meanCol).add(this.eps).rsqrt());
  }

  /** One new token per row (q, k, v [n, D]) against the cache, key bias [n,1,1,slots]: y [n, D] (after wo). */
  private attentionStep([qf, kf, vf]: tf.Tensor[], layer: Layer, n: number, Tq: number, bias: tf.Tensor, l: number): tf.Tensor {
    if (Tq !== 1) throw new Error('Decoder: one token per row after the prompts');
    const { dModel: D, nHeads: H } = this.model.config;
    const { scores, values } = this.kv.attend(l, qf.reshape([n, H, 1, D / H]), kf, vf);
    const y = tf.matMul(tf.softmax(scores.add(bias)), values).reshape([n, D]);
    return y.matMul(layer.wo);
  }

  /** Causal attention of T tokens per row among themselves (q, k, v [n*T, D]): y [n*T, D] (after wo), keys and values [n,H,T,K]. */
  private selfAttention(qkv: tf.Tensor[], layer: Layer, n: number, T: number, bias: tf.Tensor) {
    const { dModel: D, nHeads: H } = this.model.config;
    const [q, k, v] = qkv.map((t) => t.reshape([n, T, H, D / H]).transpose([0, 2, 1, 3]));
    const y = tf.matMul(tf.softmax(tf.matMul(q, k, false, true).add(bias)), v);
    return {
      y: y
        .transpose([0, 2, 1, 3])
        .reshape([n * T, D])
        .matMul(layer.wo),
      k,
      v,
    };
  }

  /** x + MLP(LN(x)), GELU's constants folded into w1 and w2. */
  private mlp(x: tf.Tensor, layer: Layer): tf.Tensor {
    const u = this.normalized(x).matMul(layer.w1).add(layer.c1);
    return x.add(u.mul(tf.erf(u).add(this.one)).matMul(layer.w2));
  }
}
