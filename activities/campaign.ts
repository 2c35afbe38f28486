/**
 * Campaign activities: thin adapters that resolve checkpoint references, call the training and
 * evaluation layers, heartbeat progress and commit results. Every one is safe to repeat: inputs
 * and seeds fix the content, and a repeated commit of identical content is a no-op.
 */
import type { Client } from '@temporalio/client';
import type { CampaignConfig } from '../config/campaign';
import type { Grants, WorkerAccess } from '../config/grants';
import { greedyAccuracy } from '../evaluation/accuracy';
import { decodeAnyState, encodeState, type TrainingState } from '../model/state';
import { alphabetMismatch, type ModelConfig } from '../model/config';
import type { LlamaConfig } from '../model/llama-config';
import type { Policy, PolicyOrigin } from '../model/policy';
import { Transformer } from '../model/transformer';
import { encodeAnchor } from '../rl/anchor';
import { RlTrainer, summarise } from '../rl/epoch';
import { resultConfig, rolloutShards } from '../rl/config';
import { filterPool } from '../rl/filter';
import type { RlStepMetrics } from '../rl/step';
import { poolRollouts, samplerPool } from '../rl/sampler-pool';
import type { CheckpointStore } from '../storage/checkpoints';
import { refOf, type CheckpointRef } from '../storage/manifest';
import { datasetSpec, decodeSettings, heldOutSpec, promptSource } from '../rules/campaign';
import { heldOut, synthesizeWithTeacher, validationTraces, type SftExample } from '../tasks/dataset';
import { loadTaskData, pinTaskFile } from '../tasks/task-file';
import { SftTrainer } from '../training/sft';
import { hashOf } from '../util/hash';
import { Prng } from '../util/prng';
import { ConfigError } from '../util/errors';
import { ExhaustedError } from '../tasks/types';
import type { PromptFilterSummary, RlEpochSummary, SftSummary } from '../contracts/campaign';
import { type CheckpointCache } from './cache';
import { pruneIntra, runResumable } from './resumable';
import { workerRollouts } from './rollout';
import { Policies } from './policies';
import { activityScope } from './scope';
import { evaluationActivities } from './evaluate';

const utf8 = (s: string) => new TextEncoder().encode(s);
const heartbeat = (details: unknown) => activityScope().heartbeat(details);

/** Runs `f`; a problem space it exhausts is reported as the config field that asked too much. */
async function namingField<T>(field: string, f: () => T | Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    if (e instanceof ExhaustedError) throw new ConfigError(`${field}: ${e.message}`);
    throw e;
  }
}

export function campaignActivities(
  store: CheckpointStore,
  backend: string,
  cache: CheckpointCache,
  temporal: () => Promise<Client>,
  grants: Grants,
) {
  const stateOf = (ref: CheckpointRef) => cache.anyState(ref);
  // What a config may make this worker read or send: its grants, never the config's say (config/grants.ts).
  const access: WorkerAccess = { grants, checkpointBucket: store.bucket };
  const policies = new Policies(access, store.client);

  /** The policy to start SFT from: fresh, or a warm start's weights (ours into a fresh model of this config; a pretrained one as it was). */
  async function startingPolicy(config: CampaignConfig, init: TrainingState<ModelConfig | LlamaConfig> | null): Promise<Policy> {
    if (init && 'architecture' in init.config) return policies.fromState(config, init);
    if (init && config.model.base)
      throw new ConfigError('model.base: the warm-start checkpoint is one of our transformer, not of this base');
    const mismatch = init && alphabetMismatch(init.config as ModelConfig, config.model);
    if (mismatch) throw new ConfigError(mismatch);
    const model = await policies.fresh(config, config.seed);
    if (init) model.setWeights(init.weights);
    return model;
  }

  /** An RL trainer on a checkpoint's state: an RL epoch's (with its anchor, optimizer and cursor), or SFT's (fresh optimizer and cursor). */
  async function rlTrainerOf(config: CampaignConfig, s: TrainingState<ModelConfig | LlamaConfig>, source: ReturnType<typeof promptSource>) {
    const anchor = s.arrays?.anchor;
    if (anchor)
      return RlTrainer.fromState(s, config.rl, source, {
        policy: await policies.fromState(config, s),
        anchor: await policies.fromState(config, s, anchor),
      });
    return RlTrainer.create(await policies.fromState(config, s), await policies.fromState(config, s), config.rl, source, config.seed);
  }

  async function readDataset(ref: CheckpointRef): Promise<SftExample[]> {
    const objects = await cache.get(ref);
    return Buffer.from(objects['sft.jsonl'])
      .toString('utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as SftExample);
  }

  return {
    /** The config with its jsonl file pinned (sha256, extra characters), for a campaign started without (by a schedule): refused when the file cannot serve it. */
    async pinTask(input: { config: CampaignConfig }): Promise<CampaignConfig> {
      return pinTaskFile(input.config, access, store.client);
    },

    async synthesize(input: { campaignId: string; config: CampaignConfig }): Promise<CheckpointRef> {
      await loadTaskData(input.config.task, store.client, access);
      const spec = datasetSpec(input.config);
      // An endpoint teacher's answers are cached as they come: a retry after a crash asks only what was not answered.
      let progress: Record<string, unknown> = { step: 0, total: spec.examples };
      const beat = setInterval(() => heartbeat(progress), 5000);
      try {
        const { examples, stats, teacher, jsonl } = await namingField('data.sftExamples', () =>
          synthesizeWithTeacher(spec, {
            access,
            cache: store,
            extraChars: input.config.model.extraChars,
            onTeacherProgress: (t) => (progress = { step: t.accepted, total: spec.examples, teacher: { ...t } }),
          }),
        );
        heartbeat({ step: examples.length, total: spec.examples });
        const { manifest } = await store.commit(
          {
            id: `${input.campaignId}/dataset`,
            kind: 'dataset',
            configHash: hashOf(spec),
            backend: 'none',
            meta: { ...stats, ...(teacher && { teacher }) },
          },
          { 'sft.jsonl': utf8(jsonl) },
        );
        return refOf(manifest);
      } finally {
        clearInterval(beat);
      }
    },

    async sftTrain(input: {
      campaignId: string;
      config: CampaignConfig;
      dataset: CheckpointRef;
      init: CheckpointRef | null;
    }): Promise<SftSummary> {
      const { config } = input;
      await loadTaskData(config.task, store.client, access);
      const format = await policies.format(config);
      const train = (await readDataset(input.dataset)).map((e) => format.buildExample(e));
      // Validation: teacher traces of held-out problems for the loss, their prompts for greedy accuracy.
      const valProblems = heldOut(heldOutSpec(config), 'val', config.data.valProblems);
      const valExamples = validationTraces(datasetSpec(config), valProblems).map(({ problem, trace }) =>
        format.buildExample({ prompt: problem.prompt, ...trace }),
      );
      const init = input.init ? await stateOf(input.init) : null;
      const t0 = performance.now();
      let tokens = 0;
      let last = { loss: NaN, valLoss: NaN, valAccuracy: NaN };
      // About 60 points of the loss curve, kept in intra checkpoints so a resumed run has them all.
      let curve: SftCurvePoint[] = [];
      const stride = Math.max(1, Math.floor(config.sft.steps / 60));
      const configHash = hashOf({
        model: config.model,
        sft: config.sft,
        seed: config.seed,
        dataset: input.dataset.sha256,
        init: input.init?.sha256 ?? null,
      });
      const { state: trainer, resumedFromStep } = await runResumable<SftTrainer<Policy>>({
        store,
        campaignId: input.campaignId,
        run: 'sft',
        parent: input.init ?? input.dataset,
        configHash,
        backend,
        totalSteps: config.sft.steps,
        checkpointEvery: config.checkpoints.sftEvery,
        tensorboard: { run: 'sft', stepBase: 0 },
        async fresh() {
          return SftTrainer.start(await startingPolicy(config, init), config.sft, train, config.seed);
        },
        async restore(objects) {
          curve = JSON.parse(Buffer.from(objects['curve.json']).toString('utf8'));
          const s = decodeAnyState(objects.state);
          return SftTrainer.fromState(s, config.sft, train, await policies.fromState(config, s));
        },
        serialize: async (t) => ({ state: encodeState(t.state()), 'curve.json': utf8(JSON.stringify(curve)) }),
        async step(t, i) {
          const r = t.trainStep();
          tokens += r.tokens;
          last.loss = r.loss;
          const done = i + 1;
          if (done % config.sft.evalEvery === 0 || done === config.sft.steps) {
            last.valLoss = valExamples.length ? t.validationLoss(valExamples) : NaN;
            last.valAccuracy = (await greedyAccuracy(t.model, valProblems, decodeSettings(config))).passAt1;
            curve.push({ step: done, loss: r.loss, valLoss: last.valLoss, valAccuracy: last.valAccuracy });
          } else if (done % stride === 0) curve.push({ step: done, loss: r.loss });
          await new Promise((r) => setImmediate(r)); // let heartbeats and cancellation through
          return {
            loss: r.loss,
            lr: r.lr,
            tokensPerS: tokens / ((performance.now() - t0) / 1000),
            ...(Number.isNaN(last.valLoss) ? {} : { valLoss: last.valLoss, valAccuracy: last.valAccuracy }),
          };
        },
      });
      try {
        const seconds = (performance.now() - t0) / 1000;
        const { manifest } = await store.commit(
          {
            id: `${input.campaignId}/sft`,
            kind: 'sft',
            step: trainer.step,
            parent: input.init?.id ?? input.dataset.id,
            configHash,
            backend,
            meta: { trainLoss: last.loss, valLoss: last.valLoss, valAccuracy: last.valAccuracy, params: trainer.model.paramCount(), curve },
          },
          { state: encodeState(trainer.state()) },
        );
        await pruneIntra(store, input.campaignId, 'sft', config.checkpoints.keepPartials);
        return {
          checkpoint: refOf(manifest),
          steps: trainer.step,
          trainLoss: last.loss,
          valLoss: last.valLoss,
          valAccuracy: last.valAccuracy,
          tokensPerS: tokens / seconds,
          seconds,
          resumedFromStep,
        };
      } finally {
        trainer.model.dispose();
      }
    },

    /** rl.filter, once before RL: the RL pool's prompts the SFT model solves sometimes but not often. */
    async filterPrompts(input: { campaignId: string; config: CampaignConfig; policy: CheckpointRef }): Promise<PromptFilterSummary> {
      await loadTaskData(input.config.task, store.client, access);
      const { config } = input;
      const model = await policies.fromState(config, await stateOf(input.policy));
      try {
        const { filter, maxNewTokens, temperature, topP, minP, garbage } = config.rl;
        const configHash = hashOf({
          filter,
          maxNewTokens,
          temperature,
          topP,
          minP,
          garbage,
          source: promptSource(config),
          seed: config.seed,
          policy: input.policy.sha256,
        });
        const rng = new Prng(config.seed).fork('prompt-filter');
        const { kept, passRates } = await filterPool(model, promptSource(config), config.rl, rng, (step, total) =>
          heartbeat({ step, total }),
        );
        if (!kept.length)
          throw new ConfigError(
            `rl.filter: none of ${passRates.length} candidate prompts has a pass rate in (0, ${filter.maxPassRate}]; raise rl.filter.maxPassRate or rl.filter.candidates`,
          );
        const meanPassRate = passRates.reduce((a, b) => a + b, 0) / passRates.length;
        const { manifest } = await store.commit(
          {
            id: `${input.campaignId}/prompt-filter`,
            kind: 'filter',
            parent: input.policy.id,
            configHash,
            backend,
            meta: { candidates: passRates.length, kept: kept.length, meanPassRate },
          },
          { 'kept.json': utf8(JSON.stringify(kept)) },
        );
        return { checkpoint: refOf(manifest), candidates: passRates.length, kept: kept.length, meanPassRate };
      } finally {
        model.dispose();
      }
    },

    async rlEpoch(input: {
      campaignId: string;
      config: CampaignConfig;
      epoch: number;
      policy: CheckpointRef;
      anchor: CheckpointRef;
      /** rl.filter's kept prompts (filterPrompts); absent: the whole RL pool. */
      filter?: CheckpointRef;
    }): Promise<RlEpochSummary> {
      const { config, epoch } = input;
      await loadTaskData(config.task, store.client, access);
      const rl = config.rl;
      const kept = input.filter
        ? (JSON.parse(Buffer.from((await cache.get(input.filter))['kept.json']).toString('utf8')) as number[])
        : undefined;
      const source = promptSource(config, kept);
      const run = `rl-e${String(epoch).padStart(4, '0')}`;
      const configHash = hashOf({
        rl: resultConfig(rl),
        seed: config.seed,
        task: config.task,
        policy: input.policy.sha256,
        anchor: input.anchor.sha256,
      });
      const policyState = await stateOf(input.policy);
      const anchorWeights = rl.anchor.mode === 'ema' && policyState.arrays?.anchor ? null : (await stateOf(input.anchor)).weights;
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
        // One curve across epochs: an RL state counts the RL steps before it (an SFT state has no anchor, none).
        tensorboard: { run: 'rl', stepBase: policyState.arrays?.anchor ? policyState.step : 0 },
        async fresh() {
          // From SFT: a new optimizer and cursor. From an RL epoch: its optimizer, Prng and cursor.
          const t = await rlTrainerOf(config, policyState, source);
          if (anchorWeights) t.anchor.setWeights(anchorWeights);
          return t;
        },
        async restore(objects) {
          metrics = JSON.parse(Buffer.from(objects['metrics.json']).toString('utf8'));
          return rlTrainerOf(config, decodeAnyState(objects.state), source);
        },
        serialize: async (t) => ({ state: encodeState(t.state()), 'metrics.json': utf8(JSON.stringify(metrics)) }),
        async step(t) {
          if (rl.rollout.mode === 'workers')
            t.rollouts ??= workerRollouts({
              client: temporal,
              store,
              backend,
              campaignId: input.campaignId,
              policy: ours(t.policy),
              shards: rolloutShards(rl),
            });
          else if (rl.rollout.processes > 1 && !t.rollouts) {
            const pool = samplerPool(rl.rollout.processes, backend);
            t.rollouts = poolRollouts(pool, ours(t.policy), rolloutShards(rl));
            t.scoring = pool.score;
          }
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
            id: `${input.campaignId}/${run}`,
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
        let anchor: CheckpointRef | undefined;
        if (rl.anchor.mode === 'ema')
          anchor = await commitAnchor(store, input.campaignId, `e${epoch}`, anchorOf(trainer.anchor), input.policy.id, backend);
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

    /** anchor := policy, as its own checkpoint named by the hash of its weights (taken from the state: no model is built). */
    async refreshAnchor(input: { campaignId: string; epoch: number; policy: CheckpointRef }): Promise<CheckpointRef> {
      const s = await stateOf(input.policy);
      const origin = (s.extra as { origin?: PolicyOrigin } | undefined)?.origin;
      const anchor = { config: s.config, weights: s.weights, ...(origin && { origin }) };
      return commitAnchor(store, input.campaignId, `e${input.epoch}`, anchor, input.policy.id, backend);
    },

    ...evaluationActivities(store, backend, policies, stateOf, access),
  };
}
export type CampaignActivities = ReturnType<typeof campaignActivities>;

export interface SftCurvePoint {
  step: number;
  loss: number;
  valLoss?: number;
  valAccuracy?: number;
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

/** What an anchor checkpoint holds of a model. */
function anchorOf(model: Policy): Parameters<typeof encodeAnchor>[0] {
  return { config: model.config, weights: model.getWeights(), ...(model.origin && { origin: model.origin }) };
}

/** Rollout workers and sampler processes run our transformer only (the config schema refuses them with a base). */
function ours(policy: Policy): Transformer {
  if (!(policy instanceof Transformer)) throw new ConfigError('rl.rollout: a pretrained base samples in the training process only');
  return policy;
}

async function commitAnchor(
  store: CheckpointStore,
  campaignId: string,
  label: string,
  anchor: Parameters<typeof encodeAnchor>[0],
  parent: string,
  backend: string,
): Promise<CheckpointRef> {
  const { bytes, sha256 } = encodeAnchor(anchor);
  const { manifest } = await store.commit(
    {
      id: `${campaignId}/anchor-${label}-${sha256.slice(0, 12)}`,
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
