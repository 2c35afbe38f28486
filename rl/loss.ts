/**
 * The RL loss (T1 section 3, step 7) and its gradient, accumulated over micro-batches:
 *
 *   loss = -(1/Z) sum_i w_i sum_t g_it  -  alphaEnt * (1/N_tok) sum_{i,t} H(pi(.|y_i,<t))
 *
 * g_it = A_i log pi(y_it) for plain policy gradient; with a PPO clip eps it is
 * min(rho A_i, clip(rho, 1-eps, 1+eps) A_i), rho = pi / pi_old per token (same gradient at
 * rho = 1). w_i is the sample's selection weight (rl/select). Z is sum_i w_i ('sequence'
 * normalisation, the paper's per-sequence mean) or sum_i w_i |y_i| ('token'). pi is the tempered
 * policy softmax(logits / T) that sampled the responses.
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
}

export interface LossOptions {
  normalisation: RlConfig['normalisation'];
  /** The sampling temperature: pi is softmax(logits / temperature), the policy that sampled. */
  temperature: number;
  alphaEnt: number;
  /** PPO ratio clip epsilon; undefined for plain policy gradient. */
  clip?: number;
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
   * as the loss): how much the entropy bonus weighs against the policy gradient.
   */
  pgNorm: number;
  entropyNorm: number;
}

/** Gradient of the RL loss over `samples` with respect to the policy's variables (no update). */
export function rlGradients(policy: Policy, samples: readonly UpdateSample[], opts: LossOptions): Gradients {
  if (!samples.length) throw new Error('rlGradients: no samples');
  const weight = (s: UpdateSample) => s.weight ?? 1;
  const length = (s: UpdateSample) => s.tokens.length - s.promptLength;
  const tokens = samples.reduce((n, s) => n + length(s), 0);
  const Z = samples.reduce((n, s) => n + weight(s) * (opts.normalisation === 'sequence' ? 1 : length(s)), 0);
  let acc: tf.Tensor[] | null = null;
  let loss = 0;
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
    const adv = tf.tensor2d(
      chunk.map((s) => s.advantage * weight(s)),
      [B, 1],
    );
    const old = opts.clip === undefined ? null : tf.tensor2d(oldLogProbGrid(chunk, T), [B, T]);
    const terms = () => {
      const { logProbs, entropies } = scoreTokens(policy, b.inputs, b.targets, opts.temperature);
      let obj: tf.Tensor = logProbs.mul(adv);
      if (old) {
        const ratio = logProbs.sub(old).exp();
        obj = tf.minimum(ratio.mul(adv), ratio.clipByValue(1 - opts.clip!, 1 + opts.clip!).mul(adv));
      }
      return {
        pg: obj
          .mul(b.mask)
          .sum()
          .mul(-1 / Z) as tf.Scalar,
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
    tf.dispose([adv, ...(old ? [old] : [])]);
    disposeBatch(b);
  }
  return { grads: acc!, loss, tokens, positions, pgNorm: norms.pg, entropyNorm: norms.entropy };
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

/**
 * sum_t log pi_T(y_t) over each sequence's response tokens at `temperature`, without gradients: the
 * anchor's side of the KL estimate d_i. Runs the inference forward (model/decode), each
 * micro-batch padded to its longest sequence.
 */
export function responseLogProbs(model: Policy, seqs: readonly Sequence[], microBatch: number, temperature: number): number[] {
  const out = new Array<number>(seqs.length);
  const decoder = model.scorer();
  try {
    for (const chunk of scoringChunks(seqs, microBatch)) {
      const b = responseBatch(
        chunk.map((i) => seqs[i]),
        model.config.contextLength,
      );
      const sums = tf.tidy(() => logProbsOf(decoder.logits(b.inputs), b.targets, temperature).mul(b.mask).sum(1).dataSync());
      chunk.forEach((i, j) => (out[i] = sums[j]));
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
export type Scoring = (model: Policy, seqs: readonly Sequence[], microBatch: number, temperature: number) => Promise<number[]>;

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

/** Old log-probs laid out like collate's targets: response token j sits at position promptLength - 1 + j. */
function oldLogProbGrid(chunk: readonly UpdateSample[], T: number): Float32Array {
  const grid = new Float32Array(chunk.length * T);
  chunk.forEach((s, b) => {
    if (!s.oldLogProbs || s.oldLogProbs.length !== s.tokens.length - s.promptLength)
      throw new Error('PPO needs oldLogProbs for every response token');
    grid.set(s.oldLogProbs, b * T + s.promptLength - 1);
  });
  return grid;
}
