/**
 * Decisions the training stages make along the way, pure (no tfjs, no Temporal, no Node built-ins):
 * where an RL step's rollouts are sampled, which SFT steps the loss curve records, when the prompt
 * filter has left nothing to train on, and what an RL epoch takes from the checkpoint it starts at.
 */
import type { CampaignConfig } from '../config/campaign';

type Rl = CampaignConfig['rl'];

/**
 * Where an RL step samples its rollouts: on rollout workers (rl.rollout.mode workers), in sampler
 * processes on this machine (local mode with more than one process), or in the training process.
 * All three give the same bits.
 */
export type RolloutPlan = 'workers' | 'processes' | 'in-process';

export function rolloutPlan(rollout: Pick<Rl['rollout'], 'mode' | 'processes'>): RolloutPlan {
  if (rollout.mode === 'workers') return 'workers';
  return rollout.processes > 1 ? 'processes' : 'in-process';
}

/** Points the SFT loss curve aims at (besides every evaluation): about 60, kept in intra checkpoints. */
export const SFT_CURVE_POINTS = 60;

/**
 * What SFT step `done` (1-based) adds to its curve: an evaluated point (validation loss and greedy
 * accuracy, every `evalEvery` steps and at the last), a training-loss point (every
 * steps / SFT_CURVE_POINTS steps), or nothing.
 */
export function sftCurveEntry(sft: Pick<CampaignConfig['sft'], 'steps' | 'evalEvery'>, done: number): 'eval' | 'loss' | null {
  if (done % sft.evalEvery === 0 || done === sft.steps) return 'eval';
  const stride = Math.max(1, Math.floor(sft.steps / SFT_CURVE_POINTS));
  return done % stride === 0 ? 'loss' : null;
}

/**
 * Why the prompt filter's result cannot be trained on, naming what to change, or null: RL needs at
 * least one kept prompt (a pass rate in (0, maxPassRate]).
 */
export function emptyFilterError(filter: Pick<Rl['filter'], 'maxPassRate'>, candidates: number, kept: number): string | null {
  if (kept > 0) return null;
  return `rl.filter: none of ${candidates} candidate prompts has a pass rate in (0, ${filter.maxPassRate}]; raise rl.filter.maxPassRate or rl.filter.candidates`;
}

/** What an RL epoch reads of the state it starts from: whether it is an RL epoch's (it carries an anchor), and its step. */
export interface StartState {
  step: number;
  arrays?: { anchor?: unknown };
}

/**
 * Whether the epoch's anchor weights come from its anchor checkpoint: not in ema mode when the
 * starting state carries its own (the EMA anchor moves with the policy, step by step).
 */
export function anchorFromCheckpoint(rl: Pick<Rl, 'anchor'>, start: StartState): boolean {
  return !(rl.anchor.mode === 'ema' && start.arrays?.anchor);
}

/**
 * The RL TensorBoard curve's step before an epoch's first step: one curve across epochs, so an RL
 * state counts the RL steps before it; an SFT state (no anchor) none.
 */
export function rlStepBase(start: StartState): number {
  return start.arrays?.anchor ? start.step : 0;
}
