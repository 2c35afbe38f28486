/**
 * Shaped rewards and RLOO advantages (T1 section 3, steps 5-6). Arrays hold B groups of K samples,
 * group g at indices g*K .. g*K+K-1.
 */

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

/** Per group: every task reward r_i + p_i is the same, so only KL noise would drive the update. */
export function zeroVarianceGroups(taskReward: readonly number[], K: number): boolean[] {
  return Array.from({ length: groups(taskReward.length, K) }, (_, g) => {
    const group = taskReward.slice(g * K, (g + 1) * K);
    return group.every((x) => x === group[0]);
  });
}
