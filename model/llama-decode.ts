/**
 * The Llama family's forward pass for generation: inference only, with a KV cache, the interface
 * and cache modes of model/decode.ts (our GPT's decoder). A decode step at small batch is a chain of
 * tiny ops, each paying the binding's overhead, so the weights are rearranged once per decoder:
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
import { GROW, type CacheMode } from './decode';
import { ropeTables, type Llama } from './llama';
import { runTfOp } from './native-matmul';
import type { Decodable } from './sample';
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

/**
 * 'append': keys [n,G,K,Tk] (transposed, so q k^T is a plain product) and values [n,G,Tk,K],
 * concatenated each token. 'inplace': keys and values as [n*G*C, K] rows (row, kv head, slot),
 * written in place; slots at or past the length hold zeros and are masked by the key bias.
 */
interface LayerCache {
  k: tf.Tensor;
  v: tf.Tensor;
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

export class LlamaDecoder {
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
  private cache: LayerCache[] = [];
  /** Rows in the batch, keys written per row, and (in place) slots per row. */
  private n = 0;
  private length = 0;
  private slots = 0;
  readonly mode: CacheMode;

  /** mode: default in place on the tensorflow backend (the only one with InplaceUpdate), else append. */
  constructor(
    private readonly model: Llama,
    mode?: CacheMode,
  ) {
    this.mode = mode ?? (tf.getBackend() === 'tensorflow' ? 'inplace' : 'append');
    if (this.mode === 'inplace' && tf.getBackend() !== 'tensorflow') throw new Error('an in-place KV cache needs the tensorflow backend');
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
   * Runs the prompts (int32 tokens and positions [n,L], additive rank-4 bias broadcastable to
   * [n,H,L,L]) and starts the cache. Returns the logits of each row's last position [n,V].
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
    if (!this.cache.length) throw new Error('LlamaDecoder.step before prefill');
    if (keyBias.shape[3] !== this.keySlots()) throw new Error(`key bias covers ${keyBias.shape[3]} slots, expected ${this.keySlots()}`);
    if (this.mode === 'inplace' && this.slots < this.keySlots()) this.grow();
    const logits = this.run(tokens, positions, keyBias);
    this.length++;
    return logits;
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
      for (const layer of this.layers) {
        x = x.add(this.attention(this.normalized(x), layer, n, T, rope, bias, 'none').y);
        x = this.mlp(x, layer);
      }
      return this.normalized(x).matMul(this.head).reshape([n, T, V]) as tf.Tensor3D;
    });
  }

  /** Keeps only these rows of the cache (in this order): finished sequences leave the batch. */
  keepRows(rows: number[]): void {
    const idx = tf.tensor1d(rows, 'int32');
    const { nKvHeads: G, headDim: K } = this.model.config;
    const pick = (t: tf.Tensor) =>
      tf.keep(
        tf.tidy(() =>
          this.mode === 'append' ? tf.gather(t, idx) : tf.gather(t.reshape([this.n, G * this.slots, K]), idx).reshape([-1, K]),
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
      const rope = this.rope(positions.flatten()); // once for every layer
      const stacked = this.stackBias(bias, Tq);
      let x: tf.Tensor = tf.gather(this.wte, tokens.flatten()); // [n*Tq, D]
      this.layers.forEach((layer, l) => {
        const a = start
          ? this.attention(this.normalized(x), layer, n, Tq, rope, stacked, this.mode)
          : this.attentionStep(this.normalized(x), layer, n, rope, stacked, old[l], at!);
        cache.push(a.cache!);
        x = this.mlp(x.add(a.y), layer);
      });
      if (Tq > 1)
        x = x
          .reshape([n, Tq, -1])
          .slice([0, Tq - 1, 0], [n, 1, -1])
          .reshape([n, -1]);
      return { logits: this.normalized(x).matMul(this.head) as tf.Tensor2D, cache };
    });
    const live = new Set(cache.flatMap(tensorsOf).map((t) => tf.keep(t))); // also when a caller's tidy wraps this call
    tf.dispose(old.flatMap(tensorsOf).filter((t) => !live.has(t))); // an in-place cache carries over
    this.cache = cache;
    return logits;
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
   * bias already stacked. store: the cache these keys and values start ('none': not kept).
   */
  private attention(h: tf.Tensor, layer: Layer, n: number, Tq: number, rope: Rope, bias: tf.Tensor, store: CacheMode | 'none') {
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
    const pad = (t: tf.Tensor) => tf.concat([t, tf.zeros([n, G, this.slots - Tq, K])], 2).reshape([-1, K]);
    const cache = store === 'none' ? null : store === 'append' ? { k: k.transpose([0, 1, 3, 2]), v } : { k: pad(k), v: pad(v) };
    return { y, cache };
  }

  /** One new token per row against the cache (keys bias [n,1,1,slots] broadcasts over the stacked queries). */
  private attentionStep(h: tf.Tensor, layer: Layer, n: number, rope: Rope, bias: tf.Tensor, past: LayerCache, at: tf.Tensor | null) {
    const { nHeads: H, nKvHeads: G, headDim: K } = this.model.config;
    const R = H / G;
    if (h.shape[0] !== n) throw new Error('LlamaDecoder: one token per row after the prompts');
    const { q: qr, k, v } = this.qkv(h, layer, rope);
    const q = qr.reshape([n, G, R, K]); // head g*R + r: already stacked for Tq = 1
    let cache: LayerCache;
    let scores: tf.Tensor;
    let values: tf.Tensor;
    if (this.mode === 'append') {
      cache = { k: tf.concat([past.k, k.reshape([n, G, K, 1])], 3), v: tf.concat([past.v, v.reshape([n, G, 1, K])], 2) };
      scores = tf.matMul(q, cache.k);
      values = cache.v;
    } else {
      cache = past;
      write(cache.k, at!, k.reshape([n * G, K]));
      write(cache.v, at!, v.reshape([n * G, K]));
      scores = tf.matMul(q, cache.k.reshape([n, G, this.slots, K]), false, true);
      values = cache.v.reshape([n, G, this.slots, K]);
    }
    const y = tf.matMul(tf.softmax(scores.add(bias)), values).reshape([n, H * K]);
    return { y: y.matMul(layer.wo), cache };
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

  /** Cache rows of slot `length` for every (row, kv head): where this step's keys and values go. */
  private writeRows(): tf.Tensor1D {
    const rows = this.n * this.model.config.nKvHeads;
    return tf.tensor1d(
      Int32Array.from({ length: rows }, (_, r) => r * this.slots + this.length),
      'int32',
    );
  }

  /** GROW more zero slots per row (one copy of the cache every GROW tokens). */
  private grow(): void {
    const { nKvHeads: G, headDim: K } = this.model.config;
    const more = (t: tf.Tensor) =>
      tf.keep(tf.tidy(() => tf.concat([t.reshape([this.n, G, this.slots, K]), tf.zeros([this.n, G, GROW, K])], 2).reshape([-1, K])));
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

/** cache[rows] = values, in the cache's own buffer (InplaceUpdate returns an alias, disposed by the caller's tidy). */
function write(cache: tf.Tensor, rows: tf.Tensor, values: tf.Tensor): void {
  runTfOp('InplaceUpdate', [cache, rows, values]);
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
