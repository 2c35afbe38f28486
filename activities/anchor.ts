/**
 * KL anchors as checkpoints of their own, named by the sha256 of their weights: anchor := policy
 * (refresh mode, between epochs, taken from the state: no model is built), and the EMA anchor an RL
 * epoch ends with (ema mode).
 */
import type { Policy, PolicyOrigin } from '../model/policy';
import { encodeAnchor } from '../rl/anchor';
import { anchorId, anchorLabel } from '../rules/checkpoints';
import type { CheckpointStore } from '../storage/checkpoints';
import { refOf, type CheckpointRef } from '../storage/manifest';
import type { StageContext } from './context';

type Anchor = Parameters<typeof encodeAnchor>[0];

export function anchorActivities(ctx: StageContext) {
  return {
    /** anchor := policy, as its own checkpoint named by the hash of its weights (taken from the state: no model is built). */
    async refreshAnchor(input: { campaignId: string; epoch: number; policy: CheckpointRef }): Promise<CheckpointRef> {
      const s = await ctx.stateOf(input.policy);
      const origin = (s.extra as { origin?: PolicyOrigin } | undefined)?.origin;
      const anchor = { config: s.config, weights: s.weights, ...(origin && { origin }) };
      return commitAnchor(ctx.store, ctx.backend, input.campaignId, input.epoch, anchor, input.policy.id);
    },
  };
}

/** What an anchor checkpoint holds of a model. */
export function anchorOf(model: Policy): Anchor {
  return { config: model.config, weights: model.getWeights(), ...(model.origin && { origin: model.origin }) };
}

/** Commits the anchor taken after RL epoch `epoch` (a repeat of the same weights is a no-op). */
export async function commitAnchor(
  store: CheckpointStore,
  backend: string,
  campaignId: string,
  epoch: number,
  anchor: Anchor,
  parent: string,
): Promise<CheckpointRef> {
  const { bytes, sha256 } = encodeAnchor(anchor);
  const { manifest } = await store.commit(
    {
      id: anchorId(campaignId, anchorLabel(epoch), sha256),
      kind: 'anchor',
      parent,
      configHash: sha256,
      backend,
      meta: { weightsSha256: sha256 },
    },
    { anchor: bytes },
  );
  return refOf(manifest);
}
