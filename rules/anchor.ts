/**
 * Which anchor the next RL epoch trains against, as far as the epoch itself decides it: in ema mode
 * the anchor the epoch blended (lambda * anchor + (1 - lambda) * policy, rl/anchor.ts) replaces the
 * one in force; refresh and frozen modes keep theirs (a refresh is its own recorded step, when
 * `anchorRefreshDue` in rules/campaign.ts says so). Pure: no Temporal, no I/O (the workflow bundle
 * imports it).
 */
import type { CampaignConfig } from '../config/campaign';

/** Whether an RL epoch commits an anchor checkpoint: in ema mode, the EMA anchor it ends with. */
export function epochCommitsAnchor(rl: Pick<CampaignConfig['rl'], 'anchor'>): boolean {
  return rl.anchor.mode === 'ema';
}

/**
 * The anchor in force after an RL epoch, before any refresh: `epochAnchor` (the anchor the epoch
 * reports) when the epoch commits one and did, else `current`.
 */
export function anchorAfterEpoch<C>(rl: Pick<CampaignConfig['rl'], 'anchor'>, current: C, epochAnchor: C | undefined): C {
  return epochCommitsAnchor(rl) ? (epochAnchor ?? current) : current;
}
