/**
 * One RL step (T1 section 3) in pure tfjs: sample K responses per prompt with the policy, judge
 * them, shape rewards with the group-centred KL to the anchor, RLOO advantages, then one policy
 * update (or PPO passes) on the selected samples. Updates `policy` and `optimizer` in place.
 */
import * as tf from '@tensorflow/tfjs';
import type { Sample } from '../model/sample';
import type { Policy } from '../model/policy';
import type { Problem } from '../tasks/types';
import type { AdamW } from '../training/adamw';
import { clipByGlobalNorm } from '../training/clip';
import type { Prng } from '../util/prng';
import { rlooAdvantages, shapeRewards, zeroVarianceGroups } from './advantage';
import type { RlConfig } from './config';
import { responseLogProbs, rlGradients, type Scoring, type UpdateSample } from './loss';
import { judge, type Judgement } from './reward';
import { localRollouts, type Rollouts } from './rollout';
import { selectForUpdate } from './select';

/** Per-step metrics: flat numbers, ready for heartbeats and logs. Means are over all B*K samples. */
export interface RlStepMetrics {
  /** Mean task reward r + p (the KL term is centred, so shaped rewards have the same mean). */
  reward: number;
  /** Share of samples the verifier accepts. */
  accuracy: number;
  garbageRate: number;
  garbageTruncated: number;
  garbageRepetition: number;
  garbageUnparseable: number;
  /** Mean d_i = sum_t [log pi - log pi_anchor] over the response: a sampled estimate of KL(pi || anchor). */
  kl: number;
  /** Mean |beta * (d_i - group mean d)|: the KL term's weight in the shaped reward, next to rewardSpread. */
  klPenalty: number;
  /** Mean |r_i + p_i - group mean|: the task reward's spread that the advantages carry. */
  rewardSpread: number;
  /** Gradient norms of the policy-gradient term and of the entropy bonus (first micro-batch of the first update). */
  pgNorm: number;
  entropyNorm: number;
  lr: number;
  /** Mean per-token entropy of the sampling policy softmax(z / T) along the sampled responses. */
  entropy: number;
  /** Mean response length in tokens. */
  responseLength: number;
  /** Mean reasoning lines (attempts and reflections). */
  reasoningSteps: number;
  /** Mean difficulty of the step's prompts: a pool whose easy level runs out drifts harder, and accuracy with it. */
  difficulty: number;
  /** Share of groups whose K task rewards are all equal. */
  zeroVarianceGroups: number;
  /** Samples the update trained on. */
  updateSamples: number;
  /** Optimizer steps taken (0 when every group was dropped). */
  optimizerSteps: number;
  /** Mean loss and pre-clip gradient norm over the optimizer steps (NaN without any). */
  loss: number;
  gradNorm: number;
  sampledTokens: number;
  /** Padded positions through forward + backward in the update. */
  updatePositions: number;
  samplingTokensPerS: number;
  /** Padded positions per second through forward + backward. */
  updateTokensPerS: number;
  samplingSeconds: number;
  scoringSeconds: number;
  updateSeconds: number;
}

export interface RlStepInput {
  policy: Policy;
  anchor: Policy;
  optimizer: AdamW;
  /** The B prompts of this step. */
  problems: readonly Problem[];
  config: RlConfig;
  /** Learning rate of this step (rlLearningRate: warmup, then constant). */
  lr: number;
  /** The step's row streams are seeded from it, then update selection draws from it. */
  rng: Prng;
  /** Who samples the responses; default: this process (localRollouts). */
  rollouts?: Rollouts;
  /** Who scores the anchor's log-probs; default: this process (responseLogProbs). */
  scoring?: Scoring;
}

const localScoring: Scoring = async (...args) => responseLogProbs(...args);
const now = () => performance.now() / 1000;
const mean = (xs: readonly number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;

export async function rlStep({
  policy,
  anchor,
  optimizer,
  problems,
  config: cfg,
  lr,
  rng,
  rollouts,
  scoring,
}: RlStepInput): Promise<RlStepMetrics> {
  const K = cfg.samplesPerPrompt;
  const t0 = now();
  const tokenizer = policy.format;
  const promptIds = problems.map((p) => tokenizer.encodePrompt(p.prompt));
  const prompts = promptIds.flatMap((ids) => Array.from({ length: K }, () => ids));
  const samples: Sample[] = await (rollouts ?? localRollouts(policy))({
    prompts: promptIds,
    first: 0,
    samplesPerPrompt: K,
    stepSeed: rng.nextU32(),
    sampleBatch: cfg.sampleBatch,
    sampling: { maxNewTokens: cfg.maxNewTokens, temperature: cfg.temperature, topP: cfg.topP, minP: cfg.minP },
  });
  const sampledTokens = samples.reduce((n, s) => n + s.tokens.length, 0);

  const t1 = now();
  const judged: Judgement[] = samples.map((s, i) => judge(problems[Math.floor(i / K)], s.tokens, cfg.garbage, tokenizer));
  const r = judged.map((j) => (j.correct ? 1 : 0));
  const p = judged.map((j) => (j.garbage ? -cfg.garbagePenalty : 0));
  const seqs = samples.map((s, i) => ({ tokens: [...prompts[i], ...s.tokens], promptLength: prompts[i].length }));
  // The sampler's log-probs are the tempered policy's (softmax(z / T)); the anchor scores the same tokens at the same T.
  const anchorLp = await (scoring ?? localScoring)(anchor, seqs, cfg.microBatch, cfg.temperature);
  const d = samples.map((s, i) => s.logProbs.reduce((a, b) => a + b, 0) - anchorLp[i]);
  const task = r.map((x, i) => x + p[i]);
  const shaped = shapeRewards(r, p, d, K, cfg.betaKl);
  const A = rlooAdvantages(shaped, K);
  const flat = zeroVarianceGroups(task, K);
  const right = judged.map((j) => j.correct && !j.garbage);
  const chosen = selectForUpdate(right, cfg.dropZeroVariance ? flat : flat.map(() => false), K, cfg, rng);
  const batch: UpdateSample[] = chosen.map(({ index: i, weight }) => ({
    ...seqs[i],
    advantage: A[i],
    weight,
    oldLogProbs: samples[i].logProbs,
  }));

  const t2 = now();
  const none = { losses: [], norms: [], positions: 0, pgNorm: NaN, entropyNorm: NaN };
  const update = batch.length ? updatePolicy(policy, optimizer, batch, cfg, lr, rng) : none;
  const t3 = now();

  const share = (f: (j: Judgement) => boolean) => judged.filter(f).length / judged.length;
  return {
    reward: mean(r.map((x, i) => x + p[i])),
    accuracy: mean(r),
    garbageRate: share((j) => j.garbage !== null),
    garbageTruncated: share((j) => j.garbage === 'truncated'),
    garbageRepetition: share((j) => j.garbage === 'repetition'),
    garbageUnparseable: share((j) => j.garbage === 'unparseable'),
    kl: mean(d),
    klPenalty: mean(d.map((_, i) => Math.abs(shaped[i] - task[i]))),
    rewardSpread: groupSpread(task, K),
    pgNorm: update.pgNorm,
    entropyNorm: update.entropyNorm,
    lr,
    entropy: samples.reduce((s, x) => s + x.entropies.reduce((a, b) => a + b, 0), 0) / sampledTokens,
    responseLength: sampledTokens / samples.length,
    reasoningSteps: mean(judged.map((j) => j.steps)),
    difficulty: mean(problems.map((q) => q.difficulty)),
    zeroVarianceGroups: mean(flat.map(Number)),
    updateSamples: batch.length,
    optimizerSteps: update.losses.length,
    loss: update.losses.length ? mean(update.losses) : NaN,
    gradNorm: update.norms.length ? mean(update.norms) : NaN,
    sampledTokens,
    updatePositions: update.positions,
    samplingTokensPerS: sampledTokens / (t1 - t0),
    updateTokensPerS: update.positions / (t3 - t2 || Infinity),
    samplingSeconds: t1 - t0,
    scoringSeconds: t2 - t1,
    updateSeconds: t3 - t2,
  };
}

/** One plain policy-gradient step on the whole batch, or PPO epochs over shuffled minibatches. */
function updatePolicy(policy: Policy, optimizer: AdamW, batch: UpdateSample[], cfg: RlConfig, lr: number, rng: Prng) {
  const losses: number[] = [];
  const norms: number[] = [];
  let positions = 0;
  let pgNorm = NaN;
  let entropyNorm = NaN;
  const apply = (part: UpdateSample[], clip?: number) => {
    const opts = {
      normalisation: cfg.normalisation,
      temperature: cfg.temperature,
      alphaEnt: cfg.alphaEnt,
      clip,
      microBatch: cfg.microBatch,
    };
    const g = rlGradients(policy, part, opts);
    const clipped = clipByGlobalNorm(g.grads, cfg.gradClip > 0 ? cfg.gradClip : Infinity);
    optimizer.step(clipped.grads, lr);
    tf.dispose([...g.grads, ...clipped.grads]);
    if (!losses.length) ({ pgNorm, entropyNorm } = g);
    losses.push(g.loss);
    norms.push(clipped.norm);
    positions += g.positions;
  };
  if (!cfg.ppo.enabled) apply(batch);
  else {
    for (let e = 0; e < cfg.ppo.epochs; e++) {
      const order = rng.shuffle(batch.slice());
      for (let i = 0; i < order.length; i += cfg.ppo.minibatch) apply(order.slice(i, i + cfg.ppo.minibatch), cfg.ppo.clip);
    }
  }
  return { losses, norms, positions, pgNorm, entropyNorm };
}

/** Mean absolute deviation of each sample's value from its group's mean. */
function groupSpread(xs: readonly number[], K: number): number {
  let total = 0;
  for (let g = 0; g < xs.length; g += K) {
    const m = mean(xs.slice(g, g + K));
    for (let i = g; i < g + K; i++) total += Math.abs(xs[i] - m);
  }
  return total / xs.length;
}
