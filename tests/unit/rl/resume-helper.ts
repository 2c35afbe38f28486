import { expect } from 'vitest';
import { decodeState, encodeState } from '../../../model/state';
import type { RlTrainer } from '../../../rl/epoch';
import type { RlStepMetrics } from '../../../rl/step';

type TrainerState = ReturnType<RlTrainer['state']>;

/** Step metrics with the wall-clock fields zeroed: the rest must match bit for bit across a resume. */
export const untimed = (m: RlStepMetrics) => ({
  ...m,
  samplingTokensPerS: 0,
  updateTokensPerS: 0,
  samplingSeconds: 0,
  scoringSeconds: 0,
  updateSeconds: 0,
});

/**
 * Trains a fresh trainer one epoch and one step into the next, round-trips its state through the
 * wire format and hands it to `restore`: the mid-epoch resume point the resume tests continue from.
 */
export async function resumeMidEpoch(fresh: () => RlTrainer, restore: (state: TrainerState) => RlTrainer): Promise<RlTrainer> {
  const b = fresh();
  await b.runEpoch();
  await b.step();
  const bytes = encodeState(b.state());
  b.dispose();
  return restore(decodeState(bytes));
}

/** Asserts a resumed run ended in the same state as the uninterrupted one: weights, anchor, moments, rng, cursor, step. */
export function expectSameState(got: TrainerState, want: TrainerState): void {
  expect(got.weights).toEqual(want.weights);
  expect(got.arrays).toEqual(want.arrays);
  expect(got.optimizer).toEqual(want.optimizer);
  expect([got.prng, got.cursor, got.step]).toEqual([want.prng, want.cursor, want.step]);
}
