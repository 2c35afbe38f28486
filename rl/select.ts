/**
 * Which samples enter the update (T1 section 3, step 8): M <= K per group, advantages already
 * computed from all K. Zero-variance groups are skipped when configured.
 *
 * Each chosen sample carries an importance weight 1 / P(chosen | its class), so the weighted sum
 * over the chosen samples is an unbiased estimate of the sum over all K: a balanced choice
 * over-represents the rarer class, and without the weights the update would follow the selection
 * rule instead of the advantages.
 */
import type { Prng } from '../util/prng';
import type { RlConfig } from './config';

export interface Chosen {
  /** Index into the B*K samples. */
  index: number;
  /** (class size) / (chosen from the class); K / M for random selection, 1 when all K are kept. */
  weight: number;
}

/**
 * Samples to train on, in group order. `right[i]`: sample i is correct and not garbage. The
 * balanced rule alternates right / other (starting with the class that comes up on a coin flip),
 * each class shuffled, topping up from whichever class is left. In every group the weights sum
 * to K.
 */
export function selectForUpdate(
  right: readonly boolean[],
  skipGroup: readonly boolean[],
  K: number,
  cfg: Pick<RlConfig, 'updateSamples' | 'updateSelection'>,
  rng: Prng,
): Chosen[] {
  const M = cfg.updateSamples ?? K;
  const out: Chosen[] = [];
  skipGroup.forEach((skip, g) => {
    if (skip) return;
    const idx = Array.from({ length: K }, (_, j) => g * K + j);
    if (M >= K) {
      out.push(...idx.map((index) => ({ index, weight: 1 })));
      return;
    }
    if (cfg.updateSelection === 'random') {
      out.push(
        ...rng
          .shuffle(idx)
          .slice(0, M)
          .sort((a, b) => a - b)
          .map((index) => ({ index, weight: K / M })),
      );
      return;
    }
    const classes = [rng.shuffle(idx.filter((i) => right[i])), rng.shuffle(idx.filter((i) => !right[i]))];
    const sizes = classes.map((c) => c.length);
    const taken = [0, 0];
    let c = rng.int(2);
    const chosen: { index: number; cls: number }[] = [];
    while (chosen.length < M) {
      if (!classes[c].length) c = 1 - c;
      chosen.push({ index: classes[c].shift()!, cls: c });
      taken[c]++;
      c = 1 - c;
    }
    chosen.sort((a, b) => a.index - b.index);
    out.push(...chosen.map(({ index, cls }) => ({ index, weight: sizes[cls] / taken[cls] })));
  });
  return out;
}
