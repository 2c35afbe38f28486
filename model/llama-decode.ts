/**
 * The Llama family's forward pass for generation: inference only, with a KV cache, the interface
 * and cache modes of model/decode.ts (our GPT's decoder), both from model/kv-cache.ts. A decode
 * step at small batch is a chain of tiny ops, each paying the binding's overhead, so the weights are
 * rearranged once per decoder:
 *  - RMSNorm gains are folded into the matrix that follows, (x/rms * g) W = (x/rms) (diag(g) W), and
 *    the mean of squares is a product with a [D,1] column (a cheaper kernel than a reduction);
 *  - q, k and v come from one fused [D,(H+2G)K] product (and one fused bias where qkvBias), the
 *    1/sqrt(K) attention scale folded into q's columns (RoPE is linear, so it commutes);
 *  - gate and up come from one fused [D,2F] product;
 *  - the final norm's gain is folded into the output head (the tied one transposed once);
 *  - RoPE's cos and sin are tables up to contextLength, gathered per (row, position): rows are
 *    left-padded, so each row has its own positions.
 * A model with LoRA adapters is decoded with them merged, W + scale A B, once per decoder (a step then
 * costs what it costs without adapters; the merged matrices are this decoder's, the model is unchanged).
 * Keys are cached after RoPE (rotated at their own positions), so a step rotates only its new q and k.
 * The cache holds the G key/value heads only: the R = H/G query heads sharing one are stacked along
 * the query axis, [n, G, R*Tq, K] against keys [n, G, slots, K], as Llama.forward does — the cache is
 * never repeated per query head.
 * Same function as Llama.forward up to float rounding (tested against it, both modes).
 *
 * Shapes: n rows in the batch, Tq new tokens per row, D dModel, H query heads, G key/value heads,
 * R = H/G, K head size, F dFF, V vocab, C in-place slots per row.
 */
import * as tf from '@tensorflow/tfjs';
import { KvCache, KvDecoder, lastPositions, tidy, type CacheMode } from './kv-cache';
import { ropeTables, type Llama } from './llama';
import type { Decodable } from './policy';
import { BLOCKED } from './transformer';

interface Layer {
  /** [D,(H+2G)K]: diag(ln1.g) [wq/sqrt(K), wk, wv]. */
  wqkv: tf.Tensor2D;
  /** [(H+2G)K] fused bias (bq/sqrt(K), bk, bv), or null without qkvBias. */
  bqkv: tf.Tensor1D | null;
  wo: tf.Tensor2D;
  /** [D,2F]: diag(ln2.g) [wg, wu]. */
  wgu: tf.Tensor2D;
  wd: tf.Tensor2D;
}

/** cos and sin of this call's (row, position) angles, [n*Tq, 1, K] (broadcast over heads). */
interface Rope {
  cos: tf.Tensor;
  sin: tf.Tensor;
}

/** A Llama as `generate` (model/sample.ts) drives it: its context, vocabulary, end token and a fresh decoder per call. */
export function llamaDecodable(model: Llama, eos: number, mode?: CacheMode): Decodable {
  const { contextLength, vocabSize } = model.config;
  return { contextLength, vocabSize, eos, decoder: () => new LlamaDecoder(model, mode) };
}

export class LlamaDecoder extends KvDecoder {
  private readonly layers: Layer[];
  private readonly wte: tf.Tensor2D;
  /** [D,V]: diag(lnf.g) head (the tied head is wte^T). */
  private readonly head: tf.Tensor2D;
  /** [D,1] column of 1/D: a row's mean of squares as a matMul. */
  private readonly meanCol: tf.Tensor2D;
  private readonly eps: tf.Scalar;
  /** [contextLength, K] RoPE tables; sin's first half negated, so rotate_half(x) sin = swap_halves(x) sinSigned. */
  private readonly cosTable: tf.Tensor2D;
  private readonly sinTable: tf.Tensor2D;
  /** Tensors made here (the rest are the model's variables). */
  private readonly owned: tf.Tensor[];

  /** mode: default in place on the tensorflow backend (the only one with InplaceUpdate), else append. */
  constructor(
    private readonly model: Llama,
    mode?: CacheMode,
  ) {
    super(new KvCache(model.config.nKvHeads, model.config.headDim, 'LlamaDecoder', mode)); // the G key/value heads of K per row
    const c = model.config;
    const { dModel: D, headDim: K, contextLength: P } = c;
    const merged = model.mergedTensors(); // adapted weights with their adapters merged ({} without LoRA)
    const w = (name: string) => merged[name] ?? model.weight(name);
    const made = tidy(() => {
      // (x/rms * g) W = (x/rms) (diag(g) W): the gain scales W's rows.
      const fold = (g: string, m: tf.Tensor) => w(g).reshape([D, 1]).mul(m) as tf.Tensor2D;
      const scale = 1 / Math.sqrt(K);
      const layers = Array.from({ length: c.nLayers }, (_, l) => {
        const p = `h${l}`;
        const wqkv = fold(`${p}.ln1.g`, tf.concat([w(`${p}.attn.wq`).mul(scale), w(`${p}.attn.wk`), w(`${p}.attn.wv`)], 1));
        const bqkv = c.qkvBias ? (tf.concat([w(`${p}.attn.bq`).mul(scale), w(`${p}.attn.bk`), w(`${p}.attn.bv`)]) as tf.Tensor1D) : null;
        const wgu = fold(`${p}.ln2.g`, tf.concat([w(`${p}.mlp.wg`), w(`${p}.mlp.wu`)], 1));
        return { wqkv, bqkv, wgu };
      });
      const head = fold('lnf.g', c.tieEmbeddings ? w('wte').transpose() : w('head'));
      const { cos, sin } = ropeTables(c, 0, P);
      for (let t = 0; t < P; t++) for (let i = 0; i < K / 2; i++) sin[t * K + i] = -sin[t * K + i];
      return {
        layers,
        head,
        meanCol: tf.fill([D, 1], 1 / D) as tf.Tensor2D,
        eps: tf.scalar(c.rmsEps),
        cosTable: tf.tensor2d(cos, [P, K]),
        sinTable: tf.tensor2d(sin, [P, K]),
      };
    });
    this.owned = [
      ...made.layers.flatMap((l) => [l.wqkv, l.wgu, ...(l.bqkv ? [l.bqkv] : [])]),
      made.head,
      made.meanCol,
      made.eps,
      made.cosTable,
      made.sinTable,
    ];
    this.layers = made.layers.map((l, i) => ({
      ...l,
      wo: w(`h${i}.attn.wo`) as tf.Tensor2D,
      wd: w(`h${i}.mlp.wd`) as tf.Tensor2D,
    }));
    // Merged wo and wd are used as they are (the decoder's own now); the rest went into the fused matrices.
    const used = new Set<tf.Tensor>(this.layers.flatMap((l) => [l.wo, l.wd]));
    this.owned.push(...Object.values(merged).filter((t) => used.has(t)));
    tf.dispose(Object.values(merged).filter((t) => !used.has(t)));
    this.head = made.head;
    this.meanCol = made.meanCol;
    this.eps = made.eps;
    this.cosTable = made.cosTable;
    this.sinTable = made.sinTable;
    this.wte = w('wte') as tf.Tensor2D;
  }

  /**
   * Logits at every position of whole sequences, int32 [n,T] -> [n,T,V], causal, positions 0..T-1,
   * no cache: scoring without gradients, the same function as Llama.forward.
   */
  logits(tokens: tf.Tensor2D): tf.Tensor3D {
    const [n, T] = tokens.shape;
    const { vocabSize: V, contextLength } = this.model.config;
    if (T > contextLength) throw new Error(`sequence length ${T} exceeds contextLength ${contextLength}`);
    return tf.tidy(() => {
      const causal = new Float32Array(T * T);
      for (let i = 0; i < T; i++) causal.fill(BLOCKED, i * T + i + 1, (i + 1) * T);
      const bias = this.stackBias(tf.tensor4d(causal, [1, 1, T, T]), T);
      const positions = tf.range(0, T, 1, 'int32').tile([n]);
      const rope = this.rope(positions);
      let x: tf.Tensor = tf.gather(this.wte, tokens.flatten());
      // Each layer in a tidy of its own: only its output outlives it (a pass over many positions would
      // otherwise hold every layer's activations until the end).
      for (const layer of this.layers) {
        const h = x;
        x = tf.tidy(() => this.mlp(h.add(this.attention(this.normalized(h), layer, n, T, rope, bias).y), layer));
      }
      return this.normalized(x).matMul(this.head).reshape([n, T, V]) as tf.Tensor3D;
    });
  }

  override dispose(): void {
    super.dispose();
    tf.dispose(this.owned);
  }

  protected run(tokens: tf.Tensor2D, positions: tf.Tensor2D, bias: tf.Tensor, start: boolean): tf.Tensor2D {
    const [n, Tq] = tokens.shape;
    const rope = this.rope(positions.flatten()); // once for every layer
    const stacked = this.stackBias(bias, Tq);
    let x: tf.Tensor = tf.gather(this.wte, tokens.flatten()); // [n*Tq, D]
    this.layers.forEach((layer, l) => {
      if (start) {
        // The prompts, attending among themselves; their keys and values start the cache. A layer's
        // activations over the prompts go with its own tidy: its output and keys and values outlive it.
        const h = x;
        const a = tidy(() => {
          const { y, k, v } = this.attention(this.normalized(h), layer, n, Tq, rope, stacked);
          return { x: this.mlp(h.add(y), layer), k, v };
        });
        this.kv.store(l, a.k, a.v);
        x = a.x;
      } else x = this.mlp(x.add(this.attentionStep(this.normalized(x), layer, n, rope, stacked, l)), layer);
    });
    return this.normalized(lastPositions(x, n, Tq)).matMul(this.head) as tf.Tensor2D;
  }

  /** cos and sin [N,1,K] for int32 positions [N] (one gather each from the tables). */
  private rope(positions: tf.Tensor): Rope {
    const K = this.model.config.headDim;
    return {
      cos: tf.gather(this.cosTable, positions).reshape([-1, 1, K]),
      sin: tf.gather(this.sinTable, positions).reshape([-1, 1, K]),
    };
  }

  /**
   * x [N, heads*K] rotated at its rows' angles: x cos + rotate_half(x) sin, with rotate_half(x) sin
   * = [b, a] * sinSigned for x's halves [a, b] (sin's first half is stored negated). Returns [N, heads, K].
   */
  private rotate(x: tf.Tensor, rope: Rope): tf.Tensor {
    const K = this.model.config.headDim;
    const xh = x.reshape([x.shape[0], -1, K]);
    const [a, b] = tf.split(xh, 2, 2);
    return xh.mul(rope.cos).add(tf.concat([b, a], 2).mul(rope.sin));
  }

  /**
   * The additive bias for stacked queries: a rank-4 bias [b, 1|H, 1|Tq, S] -> [b, 1|G, 1|R*Tq, S],
   * row r*Tq + t of group g being query head g*R + r at position t (Llama.forward's stacking).
   * Done once per call, not per layer.
   */
  private stackBias(bias: tf.Tensor, Tq: number): tf.Tensor {
    const { nHeads: H, nKvHeads: G } = this.model.config;
    const R = H / G;
    if (bias.rank !== 4) throw new Error(`bias must be rank 4, got [${bias.shape}]`);
    const [b, heads, rows, S] = bias.shape;
    if (heads === 1) return rows === 1 ? bias : bias.tile([1, 1, R, 1]);
    const perHead = bias.reshape([b, G, R, rows, S]);
    return (rows === Tq ? perHead : perHead.tile([1, 1, 1, Tq, 1])).reshape([b, G, R * Tq, S]);
  }

  /** Fused q, k, v of normalized rows h [N,D]: q and k rotated [N,H,K] and [N,G,K], v [N,G*K]. */
  private qkv(h: tf.Tensor, layer: Layer, rope: Rope) {
    const { nHeads: H, nKvHeads: G, headDim: K } = this.model.config;
    let y = h.matMul(layer.wqkv);
    if (layer.bqkv) y = y.add(layer.bqkv);
    const [qk, v] = tf.split(y, [(H + G) * K, G * K], 1);
    const [q, k] = tf.split(this.rotate(qk, rope), [H, G], 1); // q and k rotated together: one set of ops
    return { q, k, v };
  }

  /**
   * Causal attention of Tq tokens per row among themselves (the prompts, or `logits`' sequences),
   * bias already stacked: y [n*Tq, D] (after wo), keys (rotated) and values [n,G,Tq,K].
   */
  private attention(h: tf.Tensor, layer: Layer, n: number, Tq: number, rope: Rope, bias: tf.Tensor) {
    const { nHeads: H, nKvHeads: G, headDim: K } = this.model.config;
    const R = H / G;
    const { q: qr, k: kr, v: vf } = this.qkv(h, layer, rope);
    const q = qr
      .reshape([n, Tq, G, R, K])
      .transpose([0, 2, 3, 1, 4])
      .reshape([n, G, R * Tq, K]);
    const k = kr.reshape([n, Tq, G, K]).transpose([0, 2, 1, 3]); // [n,G,Tq,K]
    const v = vf.reshape([n, Tq, G, K]).transpose([0, 2, 1, 3]);
    const att = tf.softmax(tf.matMul(q, k, false, true).add(bias));
    const y = tf
      .matMul(att, v) // [n,G,R*Tq,K]
      .reshape([n, G, R, Tq, K])
      .transpose([0, 3, 1, 2, 4])
      .reshape([n * Tq, H * K])
      .matMul(layer.wo);
    return { y, k, v };
  }

  /** One new token per row against the cache (keys bias [n,1,1,slots] broadcasts over the stacked queries). */
  private attentionStep(h: tf.Tensor, layer: Layer, n: number, rope: Rope, bias: tf.Tensor, l: number): tf.Tensor {
    const { nHeads: H, nKvHeads: G, headDim: K } = this.model.config;
    const R = H / G;
    if (h.shape[0] !== n) throw new Error('LlamaDecoder: one token per row after the prompts');
    const { q, k, v } = this.qkv(h, layer, rope);
    const { scores, values } = this.kv.attend(l, q.reshape([n, G, R, K]), k, v); // head g*R + r: already stacked for Tq = 1
    const y = tf.matMul(tf.softmax(scores.add(bias)), values).reshape([n, H * K]);
    return y.matMul(layer.wo);
  }

  /** x / rms(x) over the last axis of x [N,D] (the gain lives in the next matrix). */
  private normalized(x: tf.Tensor): tf.Tensor {
    return x.mul(x.square().matMul(this.meanCol).add(this.eps).rsqrt());
  }

  /** x + SwiGLU(RMSNorm(x)), gate and up from one product. */
  private mlp(x: tf.Tensor, layer: Layer): tf.Tensor {
    const [gate, up] = tf.split(this.normalized(x).matMul(layer.wgu), 2, 1);
    return x.add(gate.mul(tf.sigmoid(gate)).mul(up).matMul(layer.wd));
  }
}
