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
 * The cache grows without copying all of it every token: new keys and values go to a short tail
 * that is merged into the main cache every TAIL tokens; attention runs over both pieces.
 * Same function as Transformer.forward up to float rounding (tested against it).
 *
 * Shapes: n rows in the batch, Tq new tokens per row, Tk keys, D dModel, H heads, K = D/H.
 */
import * as tf from '@tensorflow/tfjs';
import type { Transformer } from './transformer';

interface Layer {
  wqkv: tf.Tensor2D;
  cqkv: tf.Tensor2D;
  wo: tf.Tensor2D;
  w1: tf.Tensor2D;
  c1: tf.Tensor2D;
  w2: tf.Tensor2D;
}

interface LayerCache {
  /** Keys [n,H,K,Tk] (transposed: q k^T is then a plain product, twice as fast) and values [n,H,Tk,K] merged so far, and the tail since (null when empty). */
  k: tf.Tensor4D;
  v: tf.Tensor4D;
  kt: tf.Tensor4D | null;
  vt: tf.Tensor4D | null;
}

/** Tail length at which keys and values are merged into the main cache. */
export const TAIL = 32;
/** Cache size (floats per layer and tensor at full context) from which the tail pays for its extra ops (measured: 256 rows yes, 16 no). */
export const TAIL_FROM = 1 << 22;

export class Decoder {
  readonly vocabSize: number;
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
  private tail = false;
  private tailLength = 0;

  /** tailFrom: n * D * contextLength from which the cache keeps a tail (default TAIL_FROM; tests force both ways). */
  constructor(
    private readonly model: Transformer,
    private readonly tailFrom = TAIL_FROM,
  ) {
    const c = model.config;
    const { dModel: D, nHeads: H } = c;
    const w = (name: string) => model.weight(name);
    this.vocabSize = c.vocabSize;
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
   * Runs the prompts (int32 tokens and positions [n,Tq], additive bias broadcastable to
   * [n,H,Tq,Tq]) and starts the cache. Returns the logits of each row's last position [n,V].
   */
  prefill(tokens: tf.Tensor2D, positions: tf.Tensor2D, bias: tf.Tensor): tf.Tensor2D {
    this.disposeCache();
    const [n] = tokens.shape;
    const { dModel: D, contextLength: C } = this.model.config;
    this.tail = n * D * C >= this.tailFrom;
    this.tailLength = 0;
    return this.run(tokens, positions, bias);
  }

  /** One token per row (int32 [n,1] tokens and positions), key bias [n,1,1,Tk]: logits [n,V]. */
  step(tokens: tf.Tensor2D, positions: tf.Tensor2D, keyBias: tf.Tensor4D): tf.Tensor2D {
    if (!this.cache.length) throw new Error('Decoder.step before prefill');
    return this.run(tokens, positions, keyBias);
  }

  /** Keeps only these rows of the cache (in this order): finished sequences leave the batch. */
  keepRows(rows: number[]): void {
    const idx = tf.tensor1d(rows, 'int32');
    const pick = <T extends tf.Tensor | null>(t: T): T => (t ? (tf.keep(tf.gather(t, idx)) as T) : t);
    const kept = this.cache.map((c) => ({ k: pick(c.k), v: pick(c.v), kt: pick(c.kt), vt: pick(c.vt) }));
    idx.dispose();
    this.disposeCache();
    this.cache = kept;
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
      let x = tf.gather(this.wte, tokens.flatten()).add(tf.gather(this.wpe, positions.flatten())); // [n*Tq, D]
      this.layers.forEach((layer, l) => {
        const a = this.attention(this.normalized(x), layer, n, Tq, bias, old[l]);
        cache.push(a.cache);
        x = x.add(a.y);
        const u = this.normalized(x).matMul(layer.w1).add(layer.c1);
        x = x.add(u.mul(tf.erf(u).add(this.one)).matMul(layer.w2));
      });
      if (Tq > 1)
        x = x
          .reshape([n, Tq, -1])
          .slice([0, Tq - 1, 0], [n, 1, -1])
          .reshape([n, -1]);
      return { logits: this.normalized(x).matMul(this.head).add(this.cHead) as tf.Tensor2D, cache };
    });
    const live = new Set(cache.flatMap(tensorsOf).map((t) => tf.keep(t))); // also when a caller's tidy wraps this call
    tf.dispose(old.flatMap(tensorsOf).filter((t) => !live.has(t))); // the main cache carries over between merges
    this.cache = cache;
    if (Tq === 1 && this.tail && ++this.tailLength === TAIL) this.mergeTail();
    return logits;
  }

  /** (x - mean) / std over the last axis of x [N,D] (gain and shift live in the next matrix). */
  private normalized(x: tf.Tensor): tf.Tensor {
    const xc = x.sub(x.matMul(this.meanCol));
    return xc.mul(xc.square().matMul(this.meanCol).add(this.eps).rsqrt());
  }

  private attention(h: tf.Tensor, layer: Layer, n: number, Tq: number, bias: tf.Tensor, past: LayerCache | undefined) {
    const { dModel: D, nHeads: H } = this.model.config;
    const K = D / H;
    const [q, k, v] = tf
      .split(h.matMul(layer.wqkv).add(layer.cqkv), 3, 1)
      .map((t, i) =>
        Tq === 1
          ? t.reshape(i === 1 ? [n, H, K, 1] : [n, H, 1, K])
          : t.reshape([n, Tq, H, K]).transpose(i === 1 ? [0, 2, 3, 1] : [0, 2, 1, 3]),
      ) as tf.Tensor4D[];
    let cache: LayerCache;
    if (!past) cache = { k, v, kt: null, vt: null };
    else if (!this.tail) cache = { k: tf.concat([past.k, k], 3), v: tf.concat([past.v, v], 2), kt: null, vt: null };
    else
      cache = {
        k: past.k,
        v: past.v,
        kt: past.kt ? tf.concat([past.kt, k], 3) : k,
        vt: past.vt ? tf.concat([past.vt, v], 2) : v,
      };
    let y: tf.Tensor;
    if (!cache.kt) {
      y = tf.matMul(tf.softmax(tf.matMul(q, cache.k).add(bias)), cache.v);
    } else {
      const Tm = cache.k.shape[3];
      const att = tf.softmax(tf.concat([tf.matMul(q, cache.k), tf.matMul(q, cache.kt)], 3).add(bias));
      const [am, at] = tf.split(att, [Tm, cache.kt.shape[3]], 3);
      y = tf.matMul(am, cache.v).add(tf.matMul(at, cache.vt!));
    }
    y = Tq === 1 ? y.reshape([n, D]) : y.transpose([0, 2, 1, 3]).reshape([n * Tq, D]);
    return { y: y.matMul(layer.wo), cache };
  }

  private mergeTail(): void {
    this.cache = this.cache.map((c) => {
      if (!c.kt || !c.vt) return c;
      const merged = { k: tf.keep(tf.concat([c.k, c.kt], 3)), v: tf.keep(tf.concat([c.v, c.vt], 2)), kt: null, vt: null };
      tf.dispose([c.k, c.v, c.kt, c.vt]);
      return merged;
    });
    this.tailLength = 0;
  }

  private disposeCache(): void {
    tf.dispose(this.cache.flatMap(tensorsOf));
    this.cache = [];
  }
}

/** tf.tidy for results holding cache objects (tidy keeps every tensor it finds in the result). */
function tidy<T>(f: () => T): T {
  return tf.tidy(f as () => tf.TensorContainer) as T;
}

function tensorsOf(c: LayerCache): tf.Tensor4D[] {
  return [c.k, c.v, c.kt, c.vt].filter((t): t is tf.Tensor4D => t !== null);
}
