/**
 * Shaped rewards and advantages (T1 section 3, steps 5-6, and the estimators rl.advantage offers).
 * Arrays hold B groups of K samples, group g at indices g*K .. g*K+K-1.
 */
import type { RlConfig } from './config';

function groups(n: number, K: number): number {
  if (K < 2 || n % K !== 0) throw new RangeError(`expected groups of K >= 2 samples, got ${n} samples for K = ${K}`);
  return n / K;
}

/** R_i = r_i + p_i - betaKl * (d_i - mean_j d_j): the KL penalty is centred within the prompt's group. */
export function shapeRewards(r: readonly number[], p: readonly number[], d: readonly number[], K: number, betaKl: number): number[] {
  const out = new Array<number>(r.length);
  for (let g = 0; g < groups(r.length, K); g++) {
    let dMean = 0;
    for (let i = g * K; i < (g + 1) * K; i++) dMean += d[i] / K;
    for (let i = g * K; i < (g + 1) * K; i++) out[i] = r[i] + p[i] - betaKl * (d[i] - dMean);
  }
  return out;
}

/** A_i = R_i - mean_{j != i} R_j = (K R_i - sum_j R_j) / (K - 1); sums to zero within each group. */
export function rlooAdvantages(R: readonly number[], K: number): number[] {
  const out = new Array<number>(R.length);
  for (let g = 0; g < groups(R.length, K); g++) {
    let sum = 0;
    for (let i = g * K; i < (g + 1) * K; i++) sum += R[i];
    for (let i = g * K; i < (g + 1) * K; i++) out[i] = (K * R[i] - sum) / (K - 1);
  }
  return out;
}

/** R_i - group mean (Dr. GRPO; the numerator of GRPO and the baseline of REINFORCE++-baseline). */
export function centredRewards(R: readonly number[], K: number): number[] {
  const out = new Array<number>(R.length);
  for (let g = 0; g < groups(R.length, K); g++) {
    let sum = 0;
    for (let i = g * K; i < (g + 1) * K; i++) sum += R[i];
    for (let i = g * K; i < (g + 1) * K; i++) out[i] = R[i] - sum / K;
  }
  return out;
}

/**
 * GRPO: (R_i - group mean) / (group std + 1e-6). The std is the unbiased one (divisor K - 1), as
 * torch.std in verl's compute_grpo_outcome_advantage and TRL's GRPOTrainer (scale_rewards 'group',
 * which adds 1e-4 instead); the epsilon is verl's.
 */
export function grpoAdvantages(R: readonly number[], K: number): number[] {
  const centred = centredRewards(R, K);
  const out = new Array<number>(R.length);
  for (let g = 0; g < groups(R.length, K); g++) {
    let ss = 0;
    for (let i = g * K; i < (g + 1) * K; i++) ss += centred[i] * centred[i];
    const std = Math.sqrt(ss / (K - 1));
    for (let i = g * K; i < (g + 1) * K; i++) out[i] = centred[i] / (std + 1e-6);
  }
  return out;
}

/**
 * REINFORCE++ with a group baseline, as verl's compute_reinforce_plus_plus_baseline_outcome_advantage
 * (the outcome-reward variant that uses the K samples per prompt; plain reinforce_plus_plus would
 * whiten R itself): s_i = R_i - group mean, then whitened over the batch the way verl's masked_whiten
 * does it, where each sequence's s_i fills its |y_i| response tokens: token-weighted mean mu and
 * unbiased variance (divisor N - 1, N = sum_i |y_i|), A_i = (s_i - mu) / sqrt(var + 1e-8).
 */
export function reinforcePpAdvantages(R: readonly number[], K: number, lengths: readonly number[]): number[] {
  if (lengths.length !== R.length) throw new RangeError(`expected ${R.length} response lengths, got ${lengths.length}`);
  const s = centredRewards(R, K);
  let N = 0;
  let sum = 0;
  s.forEach((x, i) => ((N += lengths[i]), (sum += lengths[i] * x)));
  const mu = sum / N;
  let ss = 0;
  s.forEach((x, i) => (ss += lengths[i] * (x - mu) * (x - mu)));
  const variance = N > 1 ? ss / (N - 1) : 0;
  const scale = 1 / Math.sqrt(variance + 1e-8);
  return s.map((x) => (x - mu) * scale);
}

/**
 * The advantages of rl.advantage for shaped rewards R in groups of K; `lengths` (response tokens per
 * sample) only matter to reinforce_pp. rloo is rlooAdvantages itself, the same bits as before the choice existed.
 */
export function advantages(R: readonly number[], K: number, estimator: RlConfig['advantage'], lengths: readonly number[]): number[] {
  switch (estimator) {
    case 'rloo':
      return rlooAdvantages(R, K);
    case 'grpo':
      return grpoAdvantages(R, K);
    case 'dr_grpo':
      return centredRewards(R, K);
    case 'reinforce_pp':
      return reinforcePpAdvantages(R, K, lengths);
  }
}

/** Per group: every task reward r_i + p_i is the same, so only KL noise would drive the update. */
export function zeroVarianceGroups(taskReward: readonly number[], K: number): boolean[] {
  return Array.from({ length: groups(taskReward.length, K) }, (_, g) => {
    const group = taskReward.slice(g * K, (g + 1) * K);
    return group.every((x) => x === group[0]);
  });
}
