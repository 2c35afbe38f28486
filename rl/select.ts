/**
 * Which samples enter the update (T1 section 3, step 8): M <= K per group, advantages already
 * computed from all K. Zero-variance groups are skipped when configured.
 */
import type { Prng } from '../util/prng';
import type { RlConfig } from './config';

/**
 * Indices (into the B*K samples) to train on, in group order. `right[i]`: sample i is correct
 * and not garbage. The balanced rule alternates right / other (starting with the class that
 * comes up on a coin flip), each class shuffled, topping up from whichever class is left.
 */
export function selectForUpdate(
  right: readonly boolean[],
  skipGroup: readonly boolean[],
  K: number,
  cfg: Pick<RlConfig, 'updateSamples' | 'updateSelection'>,
  rng: Prng,
): number[] {
  const M = cfg.updateSamples ?? K;
  const out: number[] = [];
  skipGroup.forEach((skip, g) => {
    if (skip) return;
    const idx = Array.from({ length: K }, (_, j) => g * K + j);
    if (M >= K) {
      out.push(...idx);
      return;
    }
    if (cfg.updateSelection === 'random') {
      out.push(...rng.shuffle(idx).slice(0, M).sort((a, b) => a - b));
      return;
    }
    const classes = [rng.shuffle(idx.filter((i) => right[i])), rng.shuffle(idx.filter((i) => !right[i]))];
    let c = rng.int(2);
    const chosen: number[] = [];
    while (chosen.length < M) {
      if (!classes[c].length) c = 1 - c;
      chosen.push(classes[c].shift()!);
      c = 1 - c;
    }
    out.push(...chosen.sort((a, b) => a - b));
  });
  return out;
}
