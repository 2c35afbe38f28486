/**
 * One RL epoch from a policy checkpoint (SFT's, or the previous epoch's) against an anchor:
 * resumable from its intra checkpoints, rollouts sampled where the config says, committed as the
 * campaign's `rl-eNNNN` checkpoint (with the EMA anchor it ends with, in ema mode).
 */
import type { CampaignConfig } from '../config/campaign';
import type { ModelConfig } from '../model/config';
import type { LlamaConfig } from '../model/llama-config';
import type { Policy } from '../model/policy';
import { decodeAnyState, encodeState, type TrainingState } from '../model/state';
import { Transformer } from '../model/transformer';
import { rolloutShards } from '../rl/config';
import { RlTrainer, summarise } from '../rl/epoch';
import type { PromptSource } from '../rl/prompts';
import type { JsonlDataset } from '../tasks/jsonl';
import { poolRollouts, samplerPool } from '../rl/sampler-pool';
import type { RlStepMetrics } from '../rl/step';
import { promptSource } from '../rules/campaign';
import { rlEpochHash, rlRun, runId } from '../rules/checkpoints';
import { epochCommitsAnchor } from '../rules/anchor';
import { anchorFromCheckpoint, rlStepBase, rolloutPlan } from '../rules/stages';
import { refOf } from '../storage/manifest';
import { ConfigError } from '../util/errors';
import { hashOf } from '../util/hash';
import type { RlEpochInput, RlEpochSummary } from '../contracts/campaign';
import { anchorOf, commitAnchor } from './anchor';
import { checkpointJson, utf8, type StageContext } from './context';
import { KEPT_OBJECT } from './filter';
import { pruneIntra, runResumable } from './resumable';
import { workerRollouts } from './rollout';

export function rlEpochActivities(ctx: StageContext) {
  const { store, backend, policies } = ctx;

  /**
   * An RL trainer on a checkpoint's state: an RL epoch's (with its anchor, optimizer and cursor), or
   * SFT's (fresh optimizer and cursor). `file`: task jsonl's loaded file, which the prompts come from.
   */
  async function trainerOf(config: CampaignConfig, s: TrainingState<ModelConfig | LlamaConfig>, source: PromptSource, file?: JsonlDataset) {
    const anchor = s.arrays?.anchor;
    const policy = await policies.fromState(config, s);
    if (anchor) return RlTrainer.fromState(s, config.rl, source, { policy, anchor: await policies.fromState(config, s, anchor) }, file);
    return RlTrainer.create(policy, await policies.fromState(config, s), config.rl, source, config.seed, file);
  }

  /** Points the trainer's rollouts at rollout workers or sampler processes, once, when the config says so. */
  function placeRollouts(t: RlTrainer<Policy>, input: RlEpochInput): void {
    const rl = input.config.rl;
    const plan = rolloutPlan(rl.rollout);
    if (plan === 'workers')
      t.rollouts ??= workerRollouts({
        client: ctx.temporal,
        store,
        backend,
        campaignId: input.campaignId,
        policy: ours(t.policy),
        shards: rolloutShards(rl),
      });
    else if (plan === 'processes' && !t.rollouts) {
      const pool = samplerPool(rl.rollout.processes, backend);
      t.rollouts = poolRollouts(pool, ours(t.policy), rolloutShards(rl));
      t.scoring = pool.score;
    }
  }

  return {
    async rlEpoch(input: RlEpochInput): Promise<RlEpochSummary> {
      const { config, epoch } = input;
      const file = await ctx.loadTask(config);
      const rl = config.rl;
      const kept = input.filter ? await checkpointJson<number[]>(ctx.cache, input.filter, KEPT_OBJECT) : undefined;
      const source = promptSource(config, kept);
      const run = rlRun(epoch);
      const configHash = rlEpochHash(hashOf, config, input.policy, input.anchor);
      const policyState = await ctx.stateOf(input.policy);
      const anchorWeights = anchorFromCheckpoint(rl, policyState) ? (await ctx.stateOf(input.anchor)).weights : null;
      let metrics: RlStepMetrics[] = [];
      const t0 = performance.now();
      const { state: trainer, resumedFromStep } = await runResumable<RlTrainer<Policy>>({
        store,
        campaignId: input.campaignId,
        run,
        parent: input.policy,
        configHash,
        backend,
        totalSteps: rl.stepsPerEpoch,
        checkpointEvery: config.checkpoints.rlEvery,
        tensorboard: { run: 'rl', stepBase: rlStepBase(policyState) },
        async fresh() {
          // From SFT: a new optimizer and cursor. From an RL epoch: its optimizer, Prng and cursor.
          const t = await trainerOf(config, policyState, source, file);
          if (anchorWeights) t.anchor.setWeights(anchorWeights);
          return t;
        },
        async restore(objects) {
          metrics = JSON.parse(Buffer.from(objects['metrics.json']).toString('utf8'));
          return trainerOf(config, decodeAnyState(objects.state), source, file);
        },
        serialize: async (t) => ({ state: encodeState(t.state()), 'metrics.json': utf8(JSON.stringify(metrics)) }),
        async step(t) {
          placeRollouts(t, input);
          const m = await t.step();
          metrics.push(m);
          return {
            reward: m.reward,
            accuracy: m.accuracy,
            kl: m.kl,
            entropy: m.entropy,
            garbage: m.garbageRate,
            tokensPerS: m.samplingTokensPerS,
          };
        },
      });
      try {
        const s = summarise(metrics);
        const seconds = (performance.now() - t0) / 1000;
        const { manifest } = await store.commit(
          {
            id: runId(input.campaignId, run),
            kind: 'rl',
            step: epoch,
            parent: input.policy.id,
            configHash,
            backend,
            meta: {
              ...s,
              curve: metrics.map(curvePoint),
              rollout: { mode: rl.rollout.mode, shards: rolloutShards(rl).length, processes: rl.rollout.processes },
            },
          },
          { state: encodeState(trainer.state()) },
        );
        await pruneIntra(store, input.campaignId, run, config.checkpoints.keepPartials);
        const anchor = epochCommitsAnchor(rl)
          ? await commitAnchor(store, backend, input.campaignId, epoch, anchorOf(trainer.anchor), input.policy.id)
          : undefined;
        return {
          epoch,
          checkpoint: refOf(manifest),
          steps: metrics.length,
          reward: s.reward,
          accuracy: s.accuracy,
          kl: s.kl,
          entropy: s.entropy,
          garbageRate: s.garbageRate,
          responseLength: s.responseLength,
          zeroVarianceGroups: s.zeroVarianceGroups,
          difficulty: s.difficulty,
          klPenalty: s.klPenalty,
          rewardSpread: s.rewardSpread,
          entropyGradRatio: s.entropyNorm / s.pgNorm,
          tokensPerS: s.samplingTokensPerS,
          sampledTokens: metrics.reduce((n, m) => n + m.sampledTokens, 0),
          seconds,
          resumedFromStep,
          ...(anchor ? { anchor } : {}),
        };
      } finally {
        trainer.dispose();
      }
    },
  };
}

/** The per-step RL numbers a report plots. */
function curvePoint(m: RlStepMetrics) {
  return {
    reward: m.reward,
    accuracy: m.accuracy,
    kl: m.kl,
    entropy: m.entropy,
    responseLength: m.responseLength,
    garbageRate: m.garbageRate,
  };
}

/** Rollout workers and sampler processes run our transformer only (the config schema refuses them with a base). */
function ours(policy: Policy): Transformer {
  if (!(policy instanceof Transformer)) throw new ConfigError('rl.rollout: a pretrained base samples in the training process only');
  return policy;
}
