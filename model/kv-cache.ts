/**
 * The KV cache of the decoders (model/decode.ts, our GPT; model/llama-decode.ts, the Llama family):
 * each layer's keys and values for every row of the batch so far. The decoders keep their model's
 * arithmetic; this keeps the bookkeeping (rows, length, slots), the two layouts, rows leaving the
 * batch, growth, and the cache tensors' lifetimes.
 * At RL batch sizes a step is bound by reading the KV cache; appending a token by concatenation
 * would also copy the whole cache, every layer, every token. On the tensorflow backend the cache is
 * therefore preallocated and each token's keys and values are written into it in place (TF's
 * InplaceUpdate op), growing by GROW slots at a time; elsewhere it grows by concatenation.
 *
 * Shapes: n rows in the batch, Tq new tokens per row, Tk keys, G key/value heads per row (a GPT's
 * H heads; a Llama's nKvHeads), K head size, C in-place slots per row.
 */
import * as tf from '@tensorflow/tfjs';
import { runTfOp } from './native-matmul';

/**
 * 'append': keys [n,G,K,Tk] (transposed: q k^T is then a plain product, twice as fast) and values
 * [n,G,Tk,K], concatenated each token. 'inplace': keys and values as [n*G*C, K] rows (row, head, slot)
 * with C slots per row, written in place; slots at or past the length hold zeros and are masked by the key bias.
 */
export type CacheMode = 'append' | 'inplace';

/** Slots an in-place cache grows by when full (a copy every GROW tokens instead of every token). */
export const GROW = 32;

interface LayerCache {
  k: tf.Tensor;
  v: tf.Tensor;
}

/**
 * A decoder's cache. A prefill or a step hands it the model's pass over the batch (`run`), inside
 * which each layer passes on its keys and values: `store` at a prefill, `attend` at a step.
 */
export class KvCache {
  readonly mode: CacheMode;
  private layers: LayerCache[] = [];
  /** Each layer's cache as the pass under way leaves it (the cache once the pass returns). */
  private next: LayerCache[] = [];
  /** In place: the rows this step writes, made by the first layer to write (the pass's tidy disposes them). */
  private at: tf.Tensor1D | null = null;
  /** Rows in the batch, keys written per row, and (in place) slots per row. */
  private n = 0;
  private length = 0;
  private slots = 0;

  /**
   * heads: key/value heads per row (G), each headSize (K) wide; owner: the decoder's name (for its
   * errors). mode: default in place on the tensorflow backend (the only one with InplaceUpdate), else append.
   */
  constructor(
    private readonly heads: number,
    private readonly headSize: number,
    private readonly owner: string,
    mode?: CacheMode,
  ) {
    this.mode = mode ?? (tf.getBackend() === 'tensorflow' ? 'inplace' : 'append');
    if (this.mode === 'inplace' && tf.getBackend() !== 'tensorflow') throw new Error('an in-place KV cache needs the tensorflow backend');
  }

  /** Starts the cache on n prompts of `length` tokens: run is the pass over them, calling `store` for every layer. Returns run's result. */
  prefill<T extends tf.Tensor>(n: number, length: number, run: () => T): T {
    this.dispose();
    this.n = n;
    this.length = length;
    this.slots = slotsFor(length);
    return this.update(run);
  }

  /** Key slots the next step attends to: its key bias is [n,1,1,keySlots()], blocking slots past its length. */
  keySlots(): number {
    return this.mode === 'append' ? this.length + 1 : slotsFor(this.length);
  }

  /**
   * One token per row at slot `length`, its key bias `keySlots` wide: run is the pass over it, calling
   * `attend` for every layer. Returns run's result.
   */
  step<T extends tf.Tensor>(keySlots: number, run: () => T): T {
    if (!this.layers.length) throw new Error(`${this.owner}.step before prefill`);
    if (keySlots !== this.keySlots()) throw new Error(`key bias covers ${keySlots} slots, expected ${this.keySlots()}`);
    if (this.mode === 'inplace' && this.slots < this.keySlots()) this.grow();
    const out = this.update(run);
    this.length++;
    return out;
  }

  /** In a prefill's pass: the prompts' keys and values [n,G,Tq,K] start layer l's cache. */
  store(l: number, k: tf.Tensor, v: tf.Tensor): void {
    const { n, heads: G, headSize: K } = this;
    const Tq = k.shape[2]!;
    const pad = (t: tf.Tensor) => tf.concat([t, tf.zeros([n, G, this.slots - Tq, K])], 2).reshape([-1, K]);
    this.next[l] = this.mode === 'append' ? { k: k.transpose([0, 1, 3, 2]), v } : { k: pad(k), v: pad(v) };
  }

  /**
   * In a step's pass: the new token's keys and values (n*G*K each, row-major (row, head)) join layer
   * l's cache. Returns the scores of queries q [n,G,Rq,K] against every key slot, [n,G,Rq,keySlots()],
   * and the values they weigh, [n,G,keySlots(),K].
   */
  attend(l: number, q: tf.Tensor, k: tf.Tensor, v: tf.Tensor): { scores: tf.Tensor; values: tf.Tensor } {
    const { n, heads: G, headSize: K } = this;
    const past = this.layers[l];
    let cache: LayerCache;
    let scores: tf.Tensor;
    let values: tf.Tensor;
    if (this.mode === 'append') {
      cache = { k: tf.concat([past.k, k.reshape([n, G, K, 1])], 3), v: tf.concat([past.v, v.reshape([n, G, 1, K])], 2) };
      scores = tf.matMul(q, cache.k);
      values = cache.v;
    } else {
      cache = past;
      this.at ??= this.writeRows();
      write(cache.k, this.at, k.reshape([n * G, K]));
      write(cache.v, this.at, v.reshape([n * G, K]));
      scores = tf.matMul(q, cache.k.reshape([n, G, this.slots, K]), false, true);
      values = cache.v.reshape([n, G, this.slots, K]);
    }
    this.next[l] = cache;
    return { scores, values };
  }

  /** Keeps only these rows of the cache (in this order): finished sequences leave the batch. */
  keepRows(rows: number[]): void {
    const idx = tf.tensor1d(rows, 'int32');
    const { heads: G, headSize: K } = this;
    const pick = (t: tf.Tensor) =>
      tf.keep(
        tf.tidy(() =>
          this.mode === 'append' ? tf.gather(t, idx) : tf.gather(t.reshape([this.n, G * this.slots, K]), idx).reshape([-1, K]),
        ),
      );
    const kept = this.layers.map((c) => ({ k: pick(c.k), v: pick(c.v) }));
    idx.dispose();
    this.dispose();
    this.layers = kept;
    this.n = rows.length;
  }

  /** Frees the cache (a later prefill starts a new one). */
  dispose(): void {
    tf.dispose(this.layers.flatMap(tensorsOf));
    this.layers = [];
  }

  /** Runs a pass and makes what its layers left the cache. */
  private update<T extends tf.Tensor>(run: () => T): T {
    const old = this.layers;
    const { out, cache } = tidy(() => {
      this.next = [];
      this.at = null;
      try {
        return { out: run(), cache: this.next };
      } finally {
        this.next = [];
        this.at = null;
      }
    });
    const live = new Set(cache.flatMap(tensorsOf).map((t) => tf.keep(t))); // also when a caller's tidy wraps this call
    tf.dispose(old.flatMap(tensorsOf).filter((t) => !live.has(t))); // an in-place cache carries over
    this.layers = cache;
    return out;
  }

  /** Cache rows of slot `length` for every (row, head): where this step's keys and values go. */
  private writeRows(): tf.Tensor1D {
    const rows = this.n * this.heads;
    return tf.tensor1d(
      Int32Array.from({ length: rows }, (_, r) => r * this.slots + this.length),
      'int32',
    );
  }

  /** GROW more zero slots per row (one copy of the cache every GROW tokens). */
  private grow(): void {
    const { heads: G, headSize: K } = this;
    const more = (t: tf.Tensor) =>
      tf.keep(tf.tidy(() => tf.concat([t.reshape([this.n, G, this.slots, K]), tf.zeros([this.n, G, GROW, K])], 2).reshape([-1, K])));
    const grown = this.layers.map((c) => ({ k: more(c.k), v: more(c.v) }));
    this.dispose();
    this.layers = grown;
    this.slots += GROW;
  }
}

/**
 * What both decoders share around their model's pass: the interface `generate` (model/sample.ts)
 * drives, over a KvCache. A decoder implements `run`, its model's pass over a prefill's prompts
 * (start) or a step's tokens, handing each layer's keys and values to the cache.
 */
export abstract class KvDecoder {
  constructor(protected readonly kv: KvCache) {}

  /** 'append' or 'inplace'. */
  get mode(): CacheMode {
    return this.kv.mode;
  }

  /**
   * Runs the prompts (int32 tokens and positions [n,L], additive rank-4 bias broadcastable to
   * [n,H,L,L]) and starts the cache. Returns the logits of each row's last position [n,V].
   */
  prefill(tokens: tf.Tensor2D, positions: tf.Tensor2D, bias: tf.Tensor): tf.Tensor2D {
    const [n, L] = tokens.shape;
    return this.kv.prefill(n, L, () => this.run(tokens, positions, bias, true));
  }

  /** Key slots the next step attends to: its key bias is [n,1,1,keySlots()], blocking slots past its length. */
  keySlots(): number {
    return this.kv.keySlots();
  }

  /** One token per row (int32 [n,1] tokens and positions) at slot `length`, key bias [n,1,1,keySlots()]: logits [n,V]. */
  step(tokens: tf.Tensor2D, positions: tf.Tensor2D, keyBias: tf.Tensor4D): tf.Tensor2D {
    return this.kv.step(keyBias.shape[3], () => this.run(tokens, positions, keyBias, false));
  }

  /** Keeps only these rows of the cache (in this order): finished sequences leave the batch. */
  keepRows(rows: number[]): void {
    this.kv.keepRows(rows);
  }

  /** Frees the cache (a decoder frees its own tensors too). */
  dispose(): void {
    this.kv.dispose();
  }

  /** The model's pass (in the cache's update): logits of each row's last position [n,V]. */
  protected abstract run(tokens: tf.Tensor2D, positions: tf.Tensor2D, bias: tf.Tensor, start: boolean): tf.Tensor2D;
}

/** Each row's last position of x [n*Tq, ...] (a prefill's logits are those of the prompts' last tokens): [n, ...]. */
export function lastPositions(x: tf.Tensor, n: number, Tq: number): tf.Tensor {
  if (Tq <= 1) return x;
  return x
    .reshape([n, Tq, -1])
    .slice([0, Tq - 1, 0], [n, 1, -1])
    .reshape([n, -1]);
}

/** tf.tidy for results holding plain objects (tidy keeps every tensor it finds in the result). */
export function tidy<T>(f: () => T): T {
  return tf.tidy(f as () => tf.TensorContainer) as T;
}

/** cache[rows] = values, in the cache's own buffer (InplaceUpdate returns an alias, disposed by the caller's tidy). */
function write(cache: tf.Tensor, rows: tf.Tensor, values: tf.Tensor): void {
  runTfOp('InplaceUpdate', [cache, rows, values]);
}

/** In-place slots per row that hold `length` keys and the next one: whole GROW blocks. */
function slotsFor(length: number): number {
  return Math.ceil((length + 1) / GROW) * GROW;
}

function tensorsOf(c: LayerCache): tf.Tensor[] {
  return [c.k, c.v];
}
