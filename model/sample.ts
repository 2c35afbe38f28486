/**
 * Generation with a KV cache, and per-token log-probs / entropies of given sequences.
 *
 * Log-probs and entropies reported here are those of the tempered model, pi_T = softmax(logits / T)
 * with no top-p / min-p truncation: the policy that sampled is the policy that RL optimises, and
 * the KL to the anchor compares both at the same T (as established RL trainers score).
 */
import * as tf from '@tensorflow/tfjs';
import type { Prng } from '../util/prng';
import type { Decodable, Policy } from './policy';
import { PAD } from './tokenizer';
import { BLOCKED, oneHotFloat } from './transformer';

export interface TokenScores {
  /** log pi(targets[b,t] | inputs[b,<=t]), [B,T]. */
  logProbs: tf.Tensor2D;
  /** Entropy of pi(. | inputs[b,<=t]), [B,T]. */
  entropies: tf.Tensor2D;
}

/** log softmax(logits / temperature)[target] per position: logits [B,T,V], int32 targets [B,T] -> [B,T]. */
export function logProbsOf(logits: tf.Tensor3D, targets: tf.Tensor2D, temperature = 1): tf.Tensor2D {
  return tf.tidy(() => pick(tf.logSoftmax(temperature === 1 ? logits : (logits.div(temperature) as tf.Tensor3D)), targets));
}

function pick(logp: tf.Tensor3D, targets: tf.Tensor2D): tf.Tensor2D {
  return logp.mul(oneHotFloat(targets, logp.shape[2])).sum(-1);
}

/**
 * One forward pass over int32 inputs [B,T] scored under softmax(logits / temperature);
 * differentiable (call it inside tf.variableGrads for the policy, outside for the anchor).
 * Padded positions get values too: mask them.
 */
export function scoreTokens(model: Policy, inputs: tf.Tensor2D, targets: tf.Tensor2D, temperature = 1, dropout?: Prng): TokenScores {
  return tf.tidy(() => {
    const logits = model.forward(inputs, dropout);
    const logp = tf.logSoftmax(temperature === 1 ? logits : logits.div(temperature)) as tf.Tensor3D;
    return { logProbs: pick(logp, targets), entropies: logp.exp().mul(logp).sum(-1).neg() as tf.Tensor2D };
  });
}

export interface SampleOptions {
  maxNewTokens: number;
  /** Softmax temperature of the sampling distribution (> 0). Default 1. */
  temperature?: number;
  /** Nucleus: keep the most probable tokens up to cumulative probability topP. Default 1 (off). */
  topP?: number;
  /** Keep tokens with probability >= minP * (top probability). Default 0 (off). */
  minP?: number;
  /** Argmax of the logits instead of sampling (uses no randomness). */
  greedy?: boolean;
  /**
   * Stops the generation at the next token (rejecting with the signal's reason). With a signal,
   * every token also lets the event loop turn: reading logits does not, on the native and wasm
   * backends, so a server would otherwise see no timer or disconnect until the generation ends.
   */
  signal?: AbortSignal;
}

export interface Sample {
  /** Generated tokens (after the prompt), ending with the end token when `stopped`. */
  tokens: number[];
  /** log pi_T(token) under softmax(logits / T) (untruncated; T = 1 when greedy), one per token. */
  logProbs: number[];
  /** Entropy of pi_T at each step. */
  entropies: number[];
  /** True if the sequence ended with the end token; false if cut (maxNewTokens or context full). */
  stopped: boolean;
}

/**
 * The distribution a token is drawn from: softmax(logits / T), then min-p and top-p applied to it
 * (a token survives if it passes both), renormalised. Top-p keeps the smallest set of most probable
 * tokens (ties broken by lower id) whose probability sums to >= topP.
 */
export function samplingDistribution(logits: ArrayLike<number>, opts: Omit<SampleOptions, 'maxNewTokens' | 'greedy'> = {}): Float64Array {
  const { temperature = 1, topP = 1, minP = 0 } = opts;
  if (!(temperature > 0)) throw new Error(`temperature must be > 0, got ${temperature}`);
  const n = logits.length;
  let max = -Infinity;
  for (let i = 0; i < n; i++) max = Math.max(max, logits[i] / temperature);
  const p = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) sum += p[i] = Math.exp(logits[i] / temperature - max);
  let top = 0;
  for (let i = 0; i < n; i++) top = Math.max(top, (p[i] /= sum));
  const keep = p.map((pi) => (pi >= minP * top ? 1 : 0));
  if (topP < 1) {
    const order = Array.from(p.keys()).sort((a, b) => p[b] - p[a] || a - b);
    let cum = 0;
    for (const i of order) {
      if (cum >= topP) keep[i] = 0;
      cum += p[i];
    }
  }
  let kept = 0;
  for (let i = 0; i < n; i++) kept += p[i] *= keep[i];
  for (let i = 0; i < n; i++) p[i] /= kept;
  return p;
}

/** Draws one token from raw logits as `generate` does (one uniform from rng unless greedy). */
export function sampleToken(logits: ArrayLike<number>, opts: Omit<SampleOptions, 'maxNewTokens'>, rng: Prng): number {
  return drawToken(logits, opts, rng).token;
}

/** exp(z_i/T - max) of the row being drawn: reused, so drawing allocates nothing. */
let scratch = new Float64Array(0);

/**
 * One token from raw logits with its log-prob and the entropy of pi_T = softmax(logits / T)
 * (untruncated; T = 1 when greedy), in float64. Untruncated sampling, the RL case, takes two
 * passes over the logits and allocates nothing: draw u * sum(e) against the running sum of
 * e_i = exp(z_i/T - max), log pi_T(i) = z_i/T - lse, entropy = lse - sum(e_i z_i/T) / sum(e).
 */
export function drawToken(
  logits: ArrayLike<number>,
  opts: Omit<SampleOptions, 'maxNewTokens'>,
  rng: Prng,
): { token: number; logProb: number; entropy: number } {
  const T = opts.greedy ? 1 : (opts.temperature ?? 1);
  if (!(T > 0)) throw new Error(`temperature must be > 0, got ${T}`);
  const n = logits.length;
  let max = -Infinity;
  for (let i = 0; i < n; i++) max = Math.max(max, logits[i] / T);
  if (scratch.length < n) scratch = new Float64Array(n);
  let sum = 0;
  let weighted = 0;
  for (let i = 0; i < n; i++) {
    const a = logits[i] / T - max;
    const e = (scratch[i] = Math.exp(a));
    sum += e;
    weighted += e * a;
  }
  const lse = Math.log(sum);
  const truncated = (opts.topP ?? 1) < 1 || (opts.minP ?? 0) > 0;
  let token: number;
  if (opts.greedy) token = argmax(logits);
  else if (truncated) token = draw(samplingDistribution(logits, opts), rng.next());
  else {
    const target = rng.next() * sum;
    let cum = 0;
    token = -1;
    for (let i = 0; i < n && token < 0; i++) if (target < (cum += scratch[i])) token = i;
    if (token < 0) token = scratch.subarray(0, n).findLastIndex((e) => e > 0); // u within rounding of 1
  }
  return { token, logProb: logits[token] / T - max - lse, entropy: lse - weighted / sum };
}

/** Inverse-CDF draw from a normalised distribution with one uniform. */
function draw(dist: Float64Array, u: number): number {
  let cum = 0;
  let last = 0;
  for (let i = 0; i < dist.length; i++) {
    if (dist[i] === 0) continue;
    last = i;
    cum += dist[i];
    if (u < cum) return i;
  }
  return last; // u within rounding of 1
}

function argmax(xs: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < xs.length; i++) if (xs[i] > xs[best]) best = i;
  return best;
}

/** A model as `generate` drives it: a policy's own decoder and end token, or any Decodable. */
export function decodable(m: Policy | Decodable): Decodable {
  return 'forward' in m ? m.decodable() : m;
}

/**
 * Continues each prompt (token ids, e.g. encodePrompt(...)) until the end token, maxNewTokens, or the
 * context is full. Prompts of different lengths are left-padded; padding is masked out of
 * attention and positions count from each prompt's first token. One uniform from `rng` per
 * sampled token, in batch order (or from `rng[b]` for row b when given one stream per row).
 */
export async function generate(
  model: Policy | Decodable,
  prompts: number[][],
  opts: SampleOptions,
  rng: Prng | readonly Prng[],
): Promise<Sample[]> {
  // One stream per row makes a row's sample independent of its batch neighbours (evaluation needs that).
  const rngOf = Array.isArray(rng) ? (b: number) => rng[b] : () => rng as Prng;
  if (Array.isArray(rng) && rng.length !== prompts.length) throw new Error(`generate: ${prompts.length} prompts but ${rng.length} streams`);
  const { contextLength: C, vocabSize: V, eos } = decodable(model);
  const B = prompts.length;
  prompts.forEach((p, b) => {
    if (p.length === 0 || p.length > C) throw new Error(`generate: prompt ${b} has ${p.length} tokens (need 1..${C})`);
  });
  const out: Sample[] = prompts.map(() => ({ tokens: [], logProbs: [], entropies: [], stopped: false }));
  if (B === 0 || opts.maxNewTokens <= 0) return out;
  const L = Math.max(...prompts.map((p) => p.length));
  const pad = prompts.map((p) => L - p.length);

  // Prefill: causal attention that also skips each row's left padding.
  const tokens = new Int32Array(B * L).fill(PAD);
  const positions = new Int32Array(B * L);
  const bias = new Float32Array(B * L * L);
  for (let b = 0; b < B; b++) {
    tokens.set(prompts[b], b * L + pad[b]);
    for (let i = 0; i < L; i++) {
      positions[b * L + i] = Math.max(0, i - pad[b]);
      for (let j = 0; j < L; j++) if (j > i || j < pad[b]) bias[(b * L + i) * L + j] = BLOCKED;
    }
  }
  const decoder = decodable(model).decoder();
  let logits = tf.tidy(() =>
    decoder.prefill(tf.tensor2d(tokens, [B, L], 'int32'), tf.tensor2d(positions, [B, L], 'int32'), tf.tensor4d(bias, [B, 1, L, L])),
  );

  const done = new Array<boolean>(B).fill(false);
  // Rows of the batch tensors: original indices of the sequences still decoding, in batch order.
  let rows = Array.from({ length: B }, (_, b) => b);
  try {
    for (let Tk = L; ; Tk++) {
      if (opts.signal) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        opts.signal.throwIfAborted();
      }
      const data = (await logits.data()) as Float32Array;
      logits.dispose();
      for (let i = 0; i < rows.length; i++) {
        const b = rows[i];
        if (done[b]) continue;
        const row = data.subarray(i * V, (i + 1) * V);
        const { token, logProb, entropy } = drawToken(row, opts, rngOf(b));
        const s = out[b];
        s.tokens.push(token);
        s.logProbs.push(logProb);
        s.entropies.push(entropy);
        s.stopped = token === eos;
        done[b] = s.stopped || s.tokens.length >= opts.maxNewTokens || prompts[b].length + s.tokens.length > C;
      }
      const live = rows.flatMap((b, i) => (done[b] ? [] : [i]));
      if (!live.length) return out;
      // Finished rows leave the batch once they are an eighth of it: one gather of the cache, then
      // every later step computes live rows only (until then they ride along on PAD).
      if (live.length <= rows.length * COMPACT_AT) {
        decoder.keepRows(live);
        rows = live.map((i) => rows[i]);
      }
      const n = rows.length;
      const next = new Int32Array(n).fill(PAD);
      const nextPos = new Int32Array(n);
      const slots = decoder.keySlots(); // Tk + 1, or more for an in-place cache: those past Tk are blocked
      const keyBias = new Float32Array(n * slots);
      rows.forEach((b, i) => {
        keyBias.fill(BLOCKED, i * slots, i * slots + pad[b]);
        keyBias.fill(BLOCKED, i * slots + Tk + 1, (i + 1) * slots);
        if (done[b]) return;
        next[i] = out[b].tokens[out[b].tokens.length - 1];
        nextPos[i] = prompts[b].length + out[b].tokens.length - 1;
      });
      logits = tf.tidy(() =>
        decoder.step(tf.tensor2d(next, [n, 1], 'int32'), tf.tensor2d(nextPos, [n, 1], 'int32'), tf.tensor4d(keyBias, [n, 1, 1, slots])),
      );
    }
  } finally {
    logits.dispose();
    decoder.dispose();
  }
}

/** Compact the batch when at most this share of its rows is still decoding. */
const COMPACT_AT = 7 / 8;
