/**
 * One RL step (T1 section 3) in pure tfjs: sample K responses per prompt with the policy, judge
 * them (task reward, garbage and overlong penalties), shape rewards with the group-centred KL to the
 * anchor (or keep the KL for the loss), advantages by rl.advantage, then one policy update (or PPO
 * passes) on the selected samples. With dynamic sampling, groups without signal are replaced by
 * further prompts before any of that. Updates `policy` and `optimizer` in place.
 */
import * as tf from '@tensorflow/tfjs';
import type { Sample } from '../model/sample';
import type { Policy } from '../model/policy';
import type { Problem } from '../tasks/types';
import type { AdamW } from '../training/adamw';
import { clipByGlobalNorm } from '../training/clip';
import type { Prng } from '../util/prng';
import { advantages, shapeRewards, zeroVarianceGroups } from './advantage';
import type { RlConfig } from './config';
import { klEstimateAt, responseLogProbs, rlGradients, type LossOptions, type Scoring, type UpdateSample } from './loss';
import { judge, overlongPenalty, type Judgement } from './reward';
import { localRollouts, type Rollouts } from './rollout';
import { selectForUpdate } from './select';

/**
 * Per-step metrics: flat numbers, ready for heartbeats and logs. Means are over every sampled
 * response (all rounds of dynamic sampling); the KL and advantage ones over the groups that enter
 * the update's advantages (all of them without dynamic sampling).
 */
export interface RlStepMetrics {
  /** Mean task reward r + p + overlong penalty (the KL term is centred, so shaped rewards have the same mean). */
  reward: number;
  /** Share of samples the verifier accepts. */
  accuracy: number;
  garbageRate: number;
  garbageTruncated: number;
  garbageRepetition: number;
  garbageUnparseable: number;
  /** Mean overlong penalty (rl.overlong; 0 when off). */
  overlongPenalty: number;
  /** Mean d_i = sum_t [log pi - log pi_anchor] over the response: a sampled estimate of KL(pi || anchor). */
  kl: number;
  /** Mean |beta * (d_i - group mean d)|: the KL term's weight in the shaped reward, next to rewardSpread (0 with the KL in the loss). */
  klPenalty: number;
  /** Mean over optimizer steps of the KL term in the loss (rl.kl.placement loss); NaN otherwise. */
  klLoss: number;
  /** Mean |r_i + p_i - group mean|: the task reward's spread that the advantages carry. */
  rewardSpread: number;
  /** Gradient norms of the policy-gradient term (with a KL in the loss) and of the entropy bonus (first micro-batch of the first update). */
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
  /** Share of the sampled groups whose K task rewards are all equal. */
  zeroVarianceGroups: number;
  /** Prompts sampled (B, more when dynamic sampling refills): what the step moves the prompt cursor by. */
  promptsSampled: number;
  /** Sampling rounds: 1, plus the dynamic-sampling refills. */
  samplingRounds: number;
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
  /**
   * The next n prompts of the pool, after every prompt handed out so far (dynamic sampling's refills);
   * required when rl.dynamicSampling is enabled.
   */
  moreProblems?: (n: number) => readonly Problem[];
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

/** One prompt's K responses, judged. */
interface Group {
  problem: Problem;
  prompt: number[];
  samples: Sample[];
  judged: Judgement[];
  /** r + p (+ the overlong penalty) of each sample. */
  task: number[];
  /** Every task reward equal: no signal. */
  flat: boolean;
}

const localScoring: Scoring = async (...args) => responseLogProbs(...args);
const now = () => performance.now() / 1000;
const mean = (xs: readonly number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;

export async function rlStep({
  policy,
  anchor,
  optimizer,
  problems,
  moreProblems,
  config: cfg,
  lr,
  rng,
  rollouts,
  scoring,
}: RlStepInput): Promise<RlStepMetrics> {
  const K = cfg.samplesPerPrompt;
  const B = problems.length;
  const dynamic = cfg.dynamicSampling.enabled;
  if (dynamic && !moreProblems) throw new Error('rl.dynamicSampling needs moreProblems: the pool to refill from');
  const t0 = now();
  const tokenizer = policy.format;
  const sample = rollouts ?? localRollouts(policy);
  const stepSeed = rng.nextU32();
  const overlong = cfg.overlong.bufferTokens > 0;
  const groups: Group[] = [];
  let samplingSeconds = 0;
  let rounds = 0;
  // Round after round the rows keep one numbering (batch.first), so every row of the step has its own stream.
  for (let asked = problems; asked.length;) {
    const prompts = asked.map((p) => tokenizer.encodePrompt(p.prompt));
    const ts = now();
    const samples = await sample({
      prompts,
      first: groups.length,
      samplesPerPrompt: K,
      stepSeed,
      sampleBatch: cfg.sampleBatch,
      sampling: { maxNewTokens: cfg.maxNewTokens, temperature: cfg.temperature, topP: cfg.topP, minP: cfg.minP },
    });
    samplingSeconds += now() - ts;
    rounds++;
    asked.forEach((problem, g) => {
      const own = samples.slice(g * K, (g + 1) * K);
      const judged = own.map((s) => judge(problem, s.tokens, cfg.garbage, tokenizer));
      const task = judged.map((j, i) => {
        const rp = (j.correct ? 1 : 0) + (j.garbage ? -cfg.garbagePenalty : 0);
        return overlong ? rp + overlongPenalty(own[i].tokens.length, cfg.maxNewTokens, cfg.overlong) : rp;
      });
      groups.push({ problem, prompt: prompts[g], samples: own, judged, task, flat: zeroVarianceGroups(task, K)[0] });
    });
    const informative = groups.filter((g) => !g.flat).length;
    asked = dynamic && informative < B && rounds <= cfg.dynamicSampling.maxTries ? moreProblems!(B - informative) : [];
  }
  const all = groups.flatMap((g) => g.samples);
  const allJudged = groups.flatMap((g) => g.judged);
  const sampledTokens = all.reduce((n, s) => n + s.tokens.length, 0);

  // The groups whose advantages are computed: with dynamic sampling the informative ones only.
  const used = dynamic ? groups.filter((g) => !g.flat) : groups;
  const samples = used.flatMap((g) => g.samples);
  const judged = used.flatMap((g) => g.judged);
  const r = judged.map((j) => (j.correct ? 1 : 0));
  const p = judged.map((j) => (j.garbage ? -cfg.garbagePenalty : 0));
  const task = used.flatMap((g) => g.task);
  // Penalties beside r: the garbage penalty, and the overlong one when on (task - r, the same bits as p when off).
  const penalties = overlong ? task.map((x, i) => x - r[i]) : p;
  const seqs = used.flatMap((g) => g.samples.map((s) => ({ tokens: [...g.prompt, ...s.tokens], promptLength: g.prompt.length })));
  // The sampler's log-probs are the tempered policy's (softmax(z / T)); the anchor scores the same tokens at the same T.
  const anchorLp = seqs.length ? await (scoring ?? localScoring)(anchor, seqs, cfg.microBatch, cfg.temperature) : { sums: [], tokens: [] };
  const d = samples.map((s, i) => s.logProbs.reduce((a, b) => a + b, 0) - anchorLp.sums[i]);
  const klInReward = cfg.kl.placement === 'reward';
  // The reward placement's d_i under the estimator: k1 is d itself (its bits as they always were).
  const dEst =
    cfg.kl.estimator === 'k1'
      ? d
      : samples.map((s, i) => s.logProbs.reduce((a, lp, t) => a + klEstimateAt(lp, anchorLp.tokens[i][t], cfg.kl.estimator), 0));
  const shaped = klInReward ? shapeRewards(r, penalties, dEst, K, cfg.betaKl) : task;
  const A = advantages(
    shaped,
    K,
    cfg.advantage,
    samples.map((s) => s.tokens.length),
  );
  const flat = used.map((g) => g.flat);
  const right = judged.map((j) => j.correct && !j.garbage);
  const chosen = selectForUpdate(right, cfg.dropZeroVariance ? flat : flat.map(() => false), K, cfg, rng);
  const klInLoss = !klInReward && cfg.betaKl > 0;
  const batch: UpdateSample[] = chosen.map(({ index: i, weight }) => ({
    ...seqs[i],
    advantage: A[i],
    weight,
    oldLogProbs: samples[i].logProbs,
    ...(klInLoss && { refLogProbs: anchorLp.tokens[i] }),
  }));

  const t2 = now();
  const none = { losses: [], norms: [], klLosses: [], positions: 0, pgNorm: NaN, entropyNorm: NaN };
  const update = batch.length ? updatePolicy(policy, optimizer, batch, cfg, lr, rng) : none;
  const t3 = now();

  const share = (f: (j: Judgement) => boolean) => allJudged.filter(f).length / allJudged.length;
  const allTask = groups.flatMap((g) => g.task);
  const allR = allJudged.map((j) => (j.correct ? 1 : 0));
  return {
    reward: mean(allTask),
    accuracy: mean(allR),
    garbageRate: share((j) => j.garbage !== null),
    garbageTruncated: share((j) => j.garbage === 'truncated'),
    garbageRepetition: share((j) => j.garbage === 'repetition'),
    garbageUnparseable: share((j) => j.garbage === 'unparseable'),
    overlongPenalty: overlong ? mean(all.map((s) => overlongPenalty(s.tokens.length, cfg.maxNewTokens, cfg.overlong))) : 0,
    kl: mean(d),
    klPenalty: klInReward ? mean(d.map((_, i) => Math.abs(shaped[i] - task[i]))) : 0,
    klLoss: update.klLosses.length ? mean(update.klLosses) : NaN,
    rewardSpread: groupSpread(task, K),
    pgNorm: update.pgNorm,
    entropyNorm: update.entropyNorm,
    lr,
    entropy: all.reduce((s, x) => s + x.entropies.reduce((a, b) => a + b, 0), 0) / sampledTokens,
    responseLength: sampledTokens / all.length,
    reasoningSteps: mean(allJudged.map((j) => j.steps)),
    difficulty: mean(groups.map((g) => g.problem.difficulty)),
    zeroVarianceGroups: mean(groups.map((g) => Number(g.flat))),
    promptsSampled: groups.length,
    samplingRounds: rounds,
    updateSamples: batch.length,
    optimizerSteps: update.losses.length,
    loss: update.losses.length ? mean(update.losses) : NaN,
    gradNorm: update.norms.length ? mean(update.norms) : NaN,
    sampledTokens,
    updatePositions: update.positions,
    samplingTokensPerS: sampledTokens / samplingSeconds,
    updateTokensPerS: update.positions / (t3 - t2 || Infinity),
    samplingSeconds,
    scoringSeconds: t2 - t0 - samplingSeconds,
    updateSeconds: t3 - t2,
  };
}

/** One plain policy-gradient step on the whole batch, or PPO epochs over shuffled minibatches. */
function updatePolicy(policy: Policy, optimizer: AdamW, batch: UpdateSample[], cfg: RlConfig, lr: number, rng: Prng) {
  const losses: number[] = [];
  const norms: number[] = [];
  const klLosses: number[] = [];
  let positions = 0;
  let pgNorm = NaN;
  let entropyNorm = NaN;
  const klInLoss = cfg.kl.placement === 'loss' && cfg.betaKl > 0;
  const apply = (part: UpdateSample[], clip?: LossOptions['clip']) => {
    const opts: LossOptions = {
      lossAgg: cfg.lossAgg,
      maxTokens: cfg.maxNewTokens,
      temperature: cfg.temperature,
      alphaEnt: cfg.alphaEnt,
      clip,
      ...(klInLoss && { kl: { beta: cfg.betaKl, estimator: cfg.kl.estimator } }),
      microBatch: cfg.microBatch,
    };
    const g = rlGradients(policy, part, opts);
    const clipped = clipByGlobalNorm(g.grads, cfg.gradClip > 0 ? cfg.gradClip : Infinity);
    optimizer.step(clipped.grads, lr);
    tf.dispose([...g.grads, ...clipped.grads]);
    if (!losses.length) ({ pgNorm, entropyNorm } = g);
    losses.push(g.loss);
    norms.push(clipped.norm);
    if (klInLoss) klLosses.push(g.klLoss);
    positions += g.positions;
  };
  if (!cfg.ppo.enabled) apply(batch);
  else {
    const clip = { low: cfg.ppo.clip, high: cfg.ppo.clipHigh ?? cfg.ppo.clip, dual: cfg.ppo.dualClip };
    for (let e = 0; e < cfg.ppo.epochs; e++) {
      const order = rng.shuffle(batch.slice());
      for (let i = 0; i < order.length; i += cfg.ppo.minibatch) apply(order.slice(i, i + cfg.ppo.minibatch), clip);
    }
  }
  return { losses, norms, klLosses, positions, pgNorm, entropyNorm };
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
