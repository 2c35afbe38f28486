/**
 * rl.filter, once before RL: the RL pool's prompts the SFT model solves sometimes but not often,
 * committed as the campaign's `prompt-filter` checkpoint (the stream positions kept).
 */
import type { CampaignConfig } from '../config/campaign';
import { filterPool } from '../rl/filter';
import { promptSource } from '../rules/campaign';
import { promptFilterHash, promptFilterId } from '../rules/checkpoints';
import { emptyFilterError } from '../rules/stages';
import { refOf, type CheckpointRef } from '../storage/manifest';
import { ConfigError } from '../util/errors';
import { hashOf } from '../util/hash';
import { Prng } from '../util/prng';
import type { PromptFilterSummary } from '../contracts/campaign';
import { heartbeat, utf8, type StageContext } from './context';

/** The name of the filter checkpoint's object holding the kept stream positions (JSON). */
export const KEPT_OBJECT = 'kept.json';

export function filterActivities(ctx: StageContext) {
  const { store, backend, policies } = ctx;
  return {
    async filterPrompts(input: { campaignId: string; config: CampaignConfig; policy: CheckpointRef }): Promise<PromptFilterSummary> {
      const { config } = input;
      const file = await ctx.loadTask(config);
      const model = await policies.fromState(config, await ctx.stateOf(input.policy));
      try {
        const configHash = promptFilterHash(hashOf, config, input.policy);
        const rng = new Prng(config.seed).fork('prompt-filter');
        const progress = (step: number, total: number) => heartbeat({ step, total });
        const { kept, passRates } = await filterPool(model, promptSource(config), config.rl, rng, progress, file);
        const refused = emptyFilterError(config.rl.filter, passRates.length, kept.length);
        if (refused) throw new ConfigError(refused);
        const meanPassRate = passRates.reduce((a, b) => a + b, 0) / passRates.length;
        const { manifest } = await store.commit(
          {
            id: promptFilterId(input.campaignId),
            kind: 'filter',
            parent: input.policy.id,
            configHash,
            backend,
            meta: { candidates: passRates.length, kept: kept.length, meanPassRate },
          },
          { [KEPT_OBJECT]: utf8(JSON.stringify(kept)) },
        );
        return { checkpoint: refOf(manifest), candidates: passRates.length, kept: kept.length, meanPassRate };
      } finally {
        model.dispose();
      }
    },
  };
}
