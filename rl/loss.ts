/**
 * The RL loss (T1 section 3, step 7, with the choices of rl.lossAgg, rl.ppo and rl.kl) and its
 * gradient, accumulated over micro-batches:
 *
 *   loss = -(1/Z) sum_i c_i sum_t g_it  +  betaKl (1/Z) sum_i c_i sum_t k_it  -  alphaEnt (1/N_tok) sum_{i,t} H(pi(.|y_i,<t))
 *
 * g_it = A_i log pi(y_it) for plain policy gradient; with PPO it is the clipped objective
 * (clippedObjective: eps_low / eps_high, optional dual clip) of rho = pi / pi_old per token (same
 * gradient at rho = 1). k_it is the per-token KL estimator against the anchor (klEstimate), present
 * when rl.kl.placement is 'loss'. c_i = w_i, the sample's selection weight (rl/select), except in
 * seq-mean-token-mean where c_i = w_i / |y_i|; Z is lossNormaliser's: sum_i w_i, or sum_i w_i |y_i|
 * (token-mean), or maxNewTokens sum_i w_i (seq-mean-token-sum-norm). pi is the tempered policy
 * softmax(logits / T) that sampled the responses.
 * Each micro-batch's loss carries the whole batch's Z and N_tok, so the summed micro-batch
 * gradients are exactly the gradient of the batch loss.
 */
import * as tf from '@tensorflow/tfjs';
import { collate, disposeBatch, type Batch } from '../model/batch';
import { logProbsOf, scoreTokens } from '../model/sample';
import type { Policy } from '../model/policy';
import type { RlConfig } from './config';

export interface Sequence {
  /** [BOS] prompt [RESP] response: the whole sequence. */
  tokens: number[];
  /** Tokens before the response (BOS, prompt, RESP). */
  promptLength: number;
}

export interface UpdateSample extends Sequence {
  advantage: number;
  /** Selection weight (default 1). */
  weight?: number;
  /** log pi_old of each response token (PPO only). */
  oldLogProbs?: number[];
  /** log pi_anchor of each response token (KL in the loss only). */
  refLogProbs?: number[];
}

/** Per-token KL estimators (rl.kl.estimator). */
export type KlEstimator = RlConfig['kl']['estimator'];

/** The PPO clip: rho is kept in [1 - low, 1 + high]; `dual` (c > 1) bounds the objective of A < 0 tokens by c A. */
export interface Clip {
  low: number;
  high: number;
  dual?: number;
}

export interface LossOptions {
  lossAgg: RlConfig['lossAgg'];
  /** maxNewTokens: the constant of seq-mean-token-sum-norm (needed there only). */
  maxTokens?: number;
  /** The sampling temperature: pi is softmax(logits / temperature), the policy that sampled. */
  temperature: number;
  alphaEnt: number;
  /** PPO ratio clip; undefined for plain policy gradient. */
  clip?: Clip;
  /** KL to the anchor in the loss: betaKl and the estimator; every sample then needs refLogProbs. */
  kl?: { beta: number; estimator: KlEstimator };
  microBatch: number;
}

export interface Gradients {
  /** Summed over micro-batches, in `policy.variables` order; the caller disposes them. */
  grads: tf.Tensor[];
  loss: number;
  /** Response tokens in the batch. */
  tokens: number;
  /** Padded positions processed: what the compute scales with. */
  positions: number;
  /**
   * Gradient norms of the two loss terms on the first micro-batch, the shortest sequences (same scaling
   * as the loss): how much the entropy bonus weighs against the policy gradient (with a KL in the loss, its term counts in pgNorm).
   */
  pgNorm: number;
  entropyNorm: number;
  /** The KL term's share of `loss` (betaKl times the aggregated estimator); NaN without a KL in the loss. */
  klLoss: number;
}

/**
 * The per-token PPO objective of ratio rho and advantage A: min(rho A, clip(rho, 1 - low, 1 + high) A)
 * (DAPO's clip-higher when high > low); with a dual clip c, max(that, c A) where A < 0, as verl's
 * compute_policy_loss_vanilla (clip_ratio_c). Elementwise; `adv` broadcasts against `ratio`.
 */
export function clippedObjective(ratio: tf.Tensor, adv: tf.Tensor, clip: Clip): tf.Tensor {
  return tf.tidy(() => {
    const obj = tf.minimum(ratio.mul(adv), ratio.clipByValue(1 - clip.low, 1 + clip.high).mul(adv));
    if (clip.dual === undefined) return obj;
    return tf.where(adv.less(0).broadcastTo(obj.shape), tf.maximum(obj, adv.mul(clip.dual)), obj);
  });
}

/**
 * Schulman's per-token KL(pi || anchor) estimators of lp = log pi, ref = log pi_anchor at a sampled
 * token (http://joschu.net/blog/kl-approx.html): k1 = lp - ref; k2 = (lp - ref)^2 / 2;
 * k3 = exp(ref - lp) - (ref - lp) - 1. Unlike verl's low_var_kl, k3 is not clamped.
 */
export function klEstimate(lp: tf.Tensor, ref: tf.Tensor, estimator: KlEstimator): tf.Tensor {
  return tf.tidy(() => {
    const x = lp.sub(ref);
    if (estimator === 'k1') return x;
    if (estimator === 'k2') return x.square().mul(0.5);
    return x.neg().exp().add(x).sub(1);
  });
}

/** klEstimate for one token, in double precision: the reward placement's side (rl/step). */
export function klEstimateAt(lp: number, ref: number, estimator: KlEstimator): number {
  const x = lp - ref;
  if (estimator === 'k1') return x;
  if (estimator === 'k2') return 0.5 * x * x;
  return Math.exp(-x) + x - 1;
}

/**
 * How rl.lossAgg turns per-token terms into the loss: loss = -(1/Z) sum_i scale_i sum_t g_it, where
 * scale_i = w_i (1 / |y_i| in seq-mean-token-mean) for response lengths |y_i| and selection weights w_i.
 */
export function lossNormaliser(
  lengths: readonly number[],
  weights: readonly number[],
  lossAgg: RlConfig['lossAgg'],
  maxTokens?: number,
): { Z: number; scale: number[] } {
  let Z = lengths.reduce((n, len, i) => n + weights[i] * (lossAgg === 'token-mean' ? len : 1), 0);
  if (lossAgg === 'seq-mean-token-sum-norm') {
    if (maxTokens === undefined) throw new Error('lossAgg seq-mean-token-sum-norm needs maxTokens (maxNewTokens)');
    Z *= maxTokens;
  }
  return { Z, scale: weights.map((w, i) => (lossAgg === 'seq-mean-token-mean' ? w / lengths[i] : w)) };
}

/** Gradient of the RL loss over `samples` with respect to the policy's variables (no update). */
export function rlGradients(policy: Policy, samples: readonly UpdateSample[], opts: LossOptions): Gradients {
  if (!samples.length) throw new Error('rlGradients: no samples');
  const weight = (s: UpdateSample) => s.weight ?? 1;
  const length = (s: UpdateSample) => s.tokens.length - s.promptLength;
  const tokens = samples.reduce((n, s) => n + length(s), 0);
  const { Z } = lossNormaliser(samples.map(length), samples.map(weight), opts.lossAgg, opts.maxTokens);
  const perToken = opts.lossAgg === 'seq-mean-token-mean';
  let acc: tf.Tensor[] | null = null;
  let loss = 0;
  let klLoss = opts.kl ? 0 : NaN;
  let positions = 0;
  let norms = { pg: NaN, entropy: NaN };
  const add = (gs: tf.Tensor[]) => {
    acc = acc === null ? gs : acc.map((a, k) => { const s = a.add(gs[k]); tf.dispose([a, gs[k]]); return s; }); // prettier-ignore
  };
  const sorted = byLength(samples);
  for (let i = 0; i < sorted.length; i += opts.microBatch) {
    const chunk = sorted.slice(i, i + opts.microBatch);
    const b = responseBatch(chunk, policy.config.contextLength);
    const [B, T] = b.mask.shape;
    positions += B * T;
    // c_i A_i, and c_i alone for the KL term; in the default modes c_i = w_i, multiplied as it always was.
    const adv = tf.tensor2d(
      chunk.map((s) => (perToken ? (s.advantage * weight(s)) / length(s) : s.advantage * weight(s))),
      [B, 1],
    );
    const old = opts.clip === undefined ? null : tf.tensor2d(logProbGrid(chunk, T, 'oldLogProbs'), [B, T]);
    const kl = opts.kl && {
      ref: tf.tensor2d(logProbGrid(chunk, T, 'refLogProbs'), [B, T]),
      scale: tf.tensor2d(
        chunk.map((s) => (perToken ? weight(s) / length(s) : weight(s))),
        [B, 1],
      ),
    };
    let klValue = 0;
    const terms = () => {
      const { logProbs, entropies } = scoreTokens(policy, b.inputs, b.targets, opts.temperature);
      const obj: tf.Tensor = old ? clippedObjective(logProbs.sub(old).exp(), adv, opts.clip!) : logProbs.mul(adv);
      let pg = obj
        .mul(b.mask)
        .sum()
        .mul(-1 / Z) as tf.Scalar;
      if (kl) {
        const term = klEstimate(logProbs, kl.ref, opts.kl!.estimator)
          .mul(kl.scale)
          .mul(b.mask)
          .sum()
          .mul(opts.kl!.beta / Z) as tf.Scalar;
        klValue = term.dataSync()[0];
        pg = pg.add(term);
      }
      return {
        pg,
        ent: entropies
          .mul(b.mask)
          .sum()
          .mul(-opts.alphaEnt / tokens) as tf.Scalar,
      };
    };
    if (i === 0) {
      // The first micro-batch takes the terms one at a time (one extra backward) to measure each.
      const pg = tf.variableGrads(() => terms().pg, policy.variables);
      const ent = tf.variableGrads(() => terms().ent, policy.variables);
      const listed = (g: tf.NamedTensorMap) => policy.variables.map((v) => g[v.name]);
      norms = { pg: globalNorm(listed(pg.grads)), entropy: globalNorm(listed(ent.grads)) };
      loss += pg.value.dataSync()[0] + ent.value.dataSync()[0];
      add(listed(pg.grads));
      add(listed(ent.grads));
      tf.dispose([pg.value, ent.value]);
    } else {
      const { value, grads } = tf.variableGrads(() => {
        const t = terms();
        return t.pg.add(t.ent) as tf.Scalar;
      }, policy.variables);
      loss += value.dataSync()[0];
      add(policy.variables.map((v) => grads[v.name]));
      value.dispose();
    }
    if (kl) klLoss += klValue;
    tf.dispose([adv, ...(old ? [old] : []), ...(kl ? [kl.ref, kl.scale] : [])]);
    disposeBatch(b);
  }
  return { grads: acc!, loss, tokens, positions, pgNorm: norms.pg, entropyNorm: norms.entropy, klLoss };
}

function globalNorm(grads: readonly tf.Tensor[]): number {
  return tf.tidy(
    () =>
      tf
        .addN(grads.map((g) => g.square().sum()))
        .sqrt()
        .dataSync()[0],
  );
}

/** The anchor's log-probs of a step's responses: per sequence, and per response token. */
export interface ResponseScores {
  /** sum_t log pi_T(y_t) over each response, summed by the backend as it always was (the bits of d_i). */
  sums: number[];
  /** log pi_T(y_t) of each response token, in order (float32 values). */
  tokens: number[][];
}

/**
 * log pi_T(y_t) of each sequence's response tokens at `temperature`, and their sums, without
 * gradients: the anchor's side of the KL estimate. Runs the inference forward (model/decode), each
 * micro-batch padded to its longest sequence.
 */
export function responseLogProbs(model: Policy, seqs: readonly Sequence[], microBatch: number, temperature: number): ResponseScores {
  const out: ResponseScores = { sums: new Array<number>(seqs.length), tokens: new Array<number[]>(seqs.length) };
  const decoder = model.scorer();
  try {
    for (const chunk of scoringChunks(seqs, microBatch)) {
      const b = responseBatch(
        chunk.map((i) => seqs[i]),
        model.config.contextLength,
      );
      const T = b.mask.shape[1];
      const [sums, grid] = tf.tidy(() => {
        const lp = logProbsOf(decoder.logits(b.inputs), b.targets, temperature).mul(b.mask);
        return [lp.sum(1).dataSync(), lp.dataSync()];
      });
      chunk.forEach((i, j) => {
        const { tokens, promptLength } = seqs[i];
        const start = j * T + promptLength - 1;
        out.sums[i] = sums[j];
        out.tokens[i] = Array.from(grid.subarray(start, start + tokens.length - promptLength));
      });
      disposeBatch(b);
    }
  } finally {
    decoder.dispose();
  }
  return out;
}

/**
 * The micro-batches responseLogProbs scores, as indices into seqs: ordered by length (stable), so
 * each is padded to its longest sequence with little waste. A chunk's sequences, scored on their
 * own with microBatch = their count, form the same micro-batch: the same bits.
 */
export function scoringChunks(seqs: readonly Sequence[], microBatch: number): number[][] {
  const order = byLength(seqs.map((s, i) => ({ ...s, i }))).map((s) => s.i);
  return Array.from({ length: Math.ceil(order.length / microBatch) }, (_, c) => order.slice(c * microBatch, (c + 1) * microBatch));
}

/** Who scores the anchor's log-probs of a step's responses; responseLogProbs in this process, or sampler processes. */
export type Scoring = (model: Policy, seqs: readonly Sequence[], microBatch: number, temperature: number) => Promise<ResponseScores>;

/**
 * Sequences ordered by length (stable): a micro-batch is padded to its longest sequence, so
 * neighbours of similar length waste little compute on padding.
 */
function byLength<S extends Sequence>(seqs: readonly S[]): S[] {
  return seqs.slice().sort((a, b) => a.tokens.length - b.tokens.length);
}

/** Next-token batch whose mask covers the response tokens. */
function responseBatch(seqs: readonly Sequence[], contextLength: number): Batch {
  return collate(
    seqs.map((s) => ({ tokens: s.tokens, lossMask: s.tokens.map((_, t) => (t >= s.promptLength ? 1 : 0)) })),
    contextLength,
  );
}

/** Per-token log-probs laid out like collate's targets: response token j sits at position promptLength - 1 + j. */
function logProbGrid(chunk: readonly UpdateSample[], T: number, key: 'oldLogProbs' | 'refLogProbs'): Float32Array {
  const grid = new Float32Array(chunk.length * T);
  chunk.forEach((s, b) => {
    const lps = s[key];
    if (!lps || lps.length !== s.tokens.length - s.promptLength)
      throw new Error(`${key === 'oldLogProbs' ? 'PPO' : 'a KL in the loss'} needs ${key} for every response token`);
    grid.set(lps, b * T + s.promptLength - 1);
  });
  return grid;
}
