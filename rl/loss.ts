/**
 * The RL loss (T1 section 3, step 7) and its gradient, accumulated over micro-batches:
 *
 *   loss = -(1/Z) sum_i sum_t g_it  -  alphaEnt * (1/N_tok) sum_{i,t} H(pi(.|y_i,<t))
 *
 * g_it = A_i log pi(y_it) for plain policy gradient; with a PPO clip eps it is
 * min(rho A_i, clip(rho, 1-eps, 1+eps) A_i), rho = pi / pi_old per token (same gradient at
 * rho = 1). Z is the number of sequences ('sequence' normalisation, the paper's formula) or of
 * response tokens ('token').
 * Each micro-batch's loss carries the whole batch's Z and N_tok, so the summed micro-batch
 * gradients are exactly the gradient of the batch loss.
 */
import * as tf from '@tensorflow/tfjs';
import { collate, disposeBatch, type Batch } from '../model/batch';
import { scoreTokens } from '../model/sample';
import type { Transformer } from '../model/transformer';
import type { RlConfig } from './config';

export interface Sequence {
  /** [BOS] prompt [RESP] response: the whole sequence. */
  tokens: number[];
  /** Tokens before the response (BOS, prompt, RESP). */
  promptLength: number;
}

export interface UpdateSample extends Sequence {
  advantage: number;
  /** log pi_old of each response token (PPO only). */
  oldLogProbs?: number[];
}

export interface LossOptions {
  normalisation: RlConfig['normalisation'];
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
}

/** Gradient of the RL loss over `samples` with respect to the policy's variables (no update). */
export function rlGradients(policy: Transformer, samples: readonly UpdateSample[], opts: LossOptions): Gradients {
  if (!samples.length) throw new Error('rlGradients: no samples');
  const tokens = samples.reduce((n, s) => n + s.tokens.length - s.promptLength, 0);
  const pgScale = 1 / (opts.normalisation === 'sequence' ? samples.length : tokens);
  let acc: tf.Tensor[] | null = null;
  let loss = 0;
  let positions = 0;
  for (let i = 0; i < samples.length; i += opts.microBatch) {
    const chunk = samples.slice(i, i + opts.microBatch);
    const b = responseBatch(chunk, policy.config.contextLength);
    const [B, T] = b.mask.shape;
    positions += B * T;
    const adv = tf.tensor2d(chunk.map((s) => s.advantage), [B, 1]);
    const old = opts.clip === undefined ? null : tf.tensor2d(oldLogProbGrid(chunk, T), [B, T]);
    const { value, grads } = tf.variableGrads(() => {
      const { logProbs, entropies } = scoreTokens(policy, b.inputs, b.targets);
      let obj: tf.Tensor = logProbs.mul(adv);
      if (old) {
        const ratio = logProbs.sub(old).exp();
        obj = tf.minimum(ratio.mul(adv), ratio.clipByValue(1 - opts.clip!, 1 + opts.clip!).mul(adv));
      }
      const pg = obj.mul(b.mask).sum().mul(-pgScale);
      return pg.sub(entropies.mul(b.mask).sum().mul(opts.alphaEnt / tokens)) as tf.Scalar;
    }, policy.variables);
    loss += value.dataSync()[0];
    const gs = policy.variables.map((v) => grads[v.name]);
    acc = acc === null ? gs : acc.map((a, k) => { const s = a.add(gs[k]); tf.dispose([a, gs[k]]); return s; }); // prettier-ignore
    tf.dispose([value, adv, ...(old ? [old] : [])]);
    disposeBatch(b);
  }
  return { grads: acc!, loss, tokens, positions };
}

/**
 * sum_t log pi(y_t) over each sequence's response tokens, without gradients: the anchor's side of
 * the KL estimate d_i.
 */
export function responseLogProbs(model: Transformer, seqs: readonly Sequence[], microBatch: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < seqs.length; i += microBatch) {
    const b = responseBatch(seqs.slice(i, i + microBatch), model.config.contextLength);
    const sums = tf.tidy(() => scoreTokens(model, b.inputs, b.targets).logProbs.mul(b.mask).sum(1).dataSync());
    out.push(...sums);
    disposeBatch(b);
  }
  return out;
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
    if (!s.oldLogProbs || s.oldLogProbs.length !== s.tokens.length - s.promptLength) throw new Error('PPO needs oldLogProbs for every response token');
    grid.set(s.oldLogProbs, b * T + s.promptLength - 1);
  });
  return grid;
}
