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
 * At RL batch sizes a step is bound by reading the KV cache; appending a token by concatenation
 * would also copy the whole cache, every layer, every token. On the tensorflow backend the cache is
 * therefore preallocated and each token's keys and values are written into it in place (TF's
 * InplaceUpdate op), growing by GROW slots at a time; elsewhere it grows by concatenation.
 * Same function as Transformer.forward up to float rounding (tested against it, both modes).
 *
 * Shapes: n rows in the batch, Tq new tokens per row, Tk keys, D dModel, H heads, K = D/H.
 */
import * as tf from '@tensorflow/tfjs';
import { runTfOp } from './native-matmul';
import type { Transformer } from './transformer';

interface Layer {
  wqkv: tf.Tensor2D;
  cqkv: tf.Tensor2D;
  wo: tf.Tensor2D;
  w1: tf.Tensor2D;
  c1: tf.Tensor2D;
  w2: tf.Tensor2D;
}

/**
 * 'append': keys [n,H,K,Tk] (transposed: q k^T is then a plain product, twice as fast) and values
 * [n,H,Tk,K], concatenated each token. 'inplace': keys and values as [n*H*C, K] rows (row, head, slot)
 * with C slots per row, written in place; slots at or past the length hold zeros and are masked.
 */
export type CacheMode = 'append' | 'inplace';

interface LayerCache {
  k: tf.Tensor;
  v: tf.Tensor;
}

/** Slots an in-place cache grows by when full (a copy every GROW tokens instead of every token). */
export const GROW = 32;

export class Decoder {
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
  private cache: LayerCache[] = [];
  /** Rows in the batch, keys written per row, and (in place) slots per row. */
  private n = 0;
  private length = 0;
  private slots = 0;
  readonly mode: CacheMode;

  /** mode: default in place on the tensorflow backend (the only one with InplaceUpdate), else append. */
  constructor(
    private readonly model: Transformer,
    mode?: CacheMode,
  ) {
    this.mode = mode ?? (tf.getBackend() === 'tensorflow' ? 'inplace' : 'append');
    if (this.mode === 'inplace' && tf.getBackend() !== 'tensorflow') throw new Error('an in-place KV cache needs the tensorflow backend');
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
   * Runs the prompts (int32 tokens and positions [n,L], additive bias broadcastable to [n,H,L,L])
   * and starts the cache. Returns the logits of each row's last position [n,V].
   */
  prefill(tokens: tf.Tensor2D, positions: tf.Tensor2D, bias: tf.Tensor): tf.Tensor2D {
    this.disposeCache();
    [this.n, this.length] = tokens.shape;
    this.slots = slotsFor(this.length);
    return this.run(tokens, positions, bias);
  }

  /** Key slots the next step attends to: its key bias is [n,1,1,keySlots()], blocking slots past its length. */
  keySlots(): number {
    return this.mode === 'append' ? this.length + 1 : slotsFor(this.length);
  }

  /** One token per row (int32 [n,1] tokens and positions) at slot `length`, key bias [n,1,1,keySlots()]: logits [n,V]. */
  step(tokens: tf.Tensor2D, positions: tf.Tensor2D, keyBias: tf.Tensor4D): tf.Tensor2D {
    if (!this.cache.length) throw new Error('Decoder.step before prefill');
    if (keyBias.shape[3] !== this.keySlots()) throw new Error(`key bias covers ${keyBias.shape[3]} slots, expected ${this.keySlots()}`);
    if (this.mode === 'inplace' && this.slots < this.keySlots()) this.grow();
    const logits = this.run(tokens, positions, keyBias);
    this.length++;
    return logits;
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

  /** Keeps only these rows of the cache (in this order): finished sequences leave the batch. */
  keepRows(rows: number[]): void {
    const idx = tf.tensor1d(rows, 'int32');
    const { nHeads: H, dModel: D } = this.model.config;
    const pick = (t: tf.Tensor) =>
      tf.keep(
        tf.tidy(() =>
          this.mode === 'append' ? tf.gather(t, idx) : tf.gather(t.reshape([this.n, H * this.slots, D / H]), idx).reshape([-1, D / H]),
        ),
      );
    const kept = this.cache.map((c) => ({ k: pick(c.k), v: pick(c.v) }));
    idx.dispose();
    this.disposeCache();
    this.cache = kept;
    this.n = rows.length;
  }

  dispose(): void {
    this.disposeCache();
    tf.dispose(this.owned);
  }

  private run(tokens: tf.Tensor2D, positions: tf.Tensor2D, bias: tf.Tensor): tf.Tensor2D {
    const [n, Tq] = tokens.shape;
    const old = this.cache;
    const { logits, cache } = tidy(() => {
      const cache: LayerCache[] = [];
      const start = !old.length;
      const at = this.mode === 'inplace' && !start ? this.writeRows() : null;
      let x = tf.gather(this.wte, tokens.flatten()).add(tf.gather(this.wpe, positions.flatten())); // [n*Tq, D]
      this.layers.forEach((layer, l) => {
        const a = this.attention(this.normalized(x), layer, n, Tq, bias, start ? undefined : old[l], at);
        cache.push(a.cache);
        x = this.mlp(x.add(a.y), layer);
      });
      if (Tq > 1)
        x = x
          .reshape([n, Tq, -1])
          .slice([0, Tq - 1, 0], [n, 1, -1])
          .reshape([n, -1]);
      return { logits: this.normalized(x).matMul(this.head).add(this.cHead) as tf.Tensor2D, cache };
    });
    const live = new Set(cache.flatMap(tensorsOf).map((t) => tf.keep(t))); // also when a caller's tidy wraps this call
    tf.dispose(old.flatMap(tensorsOf).filter((t) => !live.has(t))); // an in-place cache carries over
    this.cache = cache;
    return logits;
  }

  /** (x - mean) / std over the last axis of x [N,D] (gain and shift live in the next matrix). */
  private normalized(x: tf.Tensor): tf.Tensor {
    const xc = x.sub(x.matMul(this.meanCol));
    return xc.mul(xc.square().matMul(this.meanCol).add(this.eps).rsqrt());
  }

  private attention(
    h: tf.Tensor,
    layer: Layer,
    n: number,
    Tq: number,
    bias: tf.Tensor,
    past: LayerCache | undefined,
    at: tf.Tensor | null,
  ) {
    const { dModel: D, nHeads: H } = this.model.config;
    const K = D / H;
    const [qf, kf, vf] = tf.split(h.matMul(layer.wqkv).add(layer.cqkv), 3, 1); // [n*Tq, D] each
    if (!past) {
      // The prompts, attending among themselves; their keys and values start the cache.
      const [q, k, v] = [qf, kf, vf].map((t) => t.reshape([n, Tq, H, K]).transpose([0, 2, 1, 3]));
      const y = tf.matMul(tf.softmax(tf.matMul(q, k, false, true).add(bias)), v);
      const pad = (t: tf.Tensor) => tf.concat([t, tf.zeros([n, H, this.slots - Tq, K])], 2).reshape([-1, K]);
      const cache = this.mode === 'append' ? { k: k.transpose([0, 1, 3, 2]), v } : { k: pad(k), v: pad(v) };
      return {
        y: y
          .transpose([0, 2, 1, 3])
          .reshape([n * Tq, D])
          .matMul(layer.wo),
        cache,
      };
    }
    if (Tq !== 1) throw new Error('Decoder: one token per row after the prompts');
    const q = qf.reshape([n, H, 1, K]);
    let cache: LayerCache;
    let scores: tf.Tensor;
    let values: tf.Tensor;
    if (this.mode === 'append') {
      cache = { k: tf.concat([past.k, kf.reshape([n, H, K, 1])], 3), v: tf.concat([past.v, vf.reshape([n, H, 1, K])], 2) };
      scores = tf.matMul(q, cache.k);
      values = cache.v;
    } else {
      cache = past;
      this.write(cache.k, at!, kf.reshape([n * H, K]));
      this.write(cache.v, at!, vf.reshape([n * H, K]));
      scores = tf.matMul(q, cache.k.reshape([n, H, this.slots, K]), false, true);
      values = cache.v.reshape([n, H, this.slots, K]);
    }
    const y = tf.matMul(tf.softmax(scores.add(bias)), values).reshape([n, D]);
    return { y: y.matMul(layer.wo), cache };
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

  /** Cache rows of slot `length` for every (row, head): where this step's keys and values go. */
  private writeRows(): tf.Tensor1D {
    const rows = this.n * this.model.config.nHeads;
    return tf.tensor1d(
      Int32Array.from({ length: rows }, (_, r) => r * this.slots + this.length),
      'int32',
    );
  }

  /** cache[rows] = values, in the cache's own buffer (InplaceUpdate returns an alias, disposed by the caller's tidy). */
  private write(cache: tf.Tensor, rows: tf.Tensor, values: tf.Tensor): void {
    runTfOp('InplaceUpdate', [cache, rows, values]);
  }

  /** GROW more zero slots per row (one copy of the cache every GROW tokens). */
  private grow(): void {
    const { nHeads: H, dModel: D } = this.model.config;
    const K = D / H;
    const more = (t: tf.Tensor) =>
      tf.keep(tf.tidy(() => tf.concat([t.reshape([this.n, H, this.slots, K]), tf.zeros([this.n, H, GROW, K])], 2).reshape([-1, K])));
    const grown = this.cache.map((c) => ({ k: more(c.k), v: more(c.v) }));
    this.disposeCache();
    this.cache = grown;
    this.slots += GROW;
  }

  private disposeCache(): void {
    tf.dispose(this.cache.flatMap(tensorsOf));
    this.cache = [];
  }
}

/** In-place slots per row that hold `length` keys and the next one: whole GROW blocks. */
function slotsFor(length: number): number {
  return Math.ceil((length + 1) / GROW) * GROW;
}

/** tf.tidy for results holding cache objects (tidy keeps every tensor it finds in the result). */
function tidy<T>(f: () => T): T {
  return tf.tidy(f as () => tf.TensorContainer) as T;
}

function tensorsOf(c: LayerCache): tf.Tensor[] {
  return [c.k, c.v];
}
