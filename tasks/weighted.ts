import type { Prng } from '../util/prng';

/** Index i with probability weights[i] / sum(weights). */
export function sampleWeighted(weights: readonly number[], rng: Prng): number {
  const total = weights.reduce((s, w) => s + w, 0);
  if (!(total > 0)) throw new RangeError('sampleWeighted: weights must have a positive sum');
  let r = rng.next() * total;
  for (let i = 0; i < weights.length; i++) {
    r -= weights[i];
    if (r < 0) return i;
  }
  return weights.findLastIndex((w) => w > 0);
}
