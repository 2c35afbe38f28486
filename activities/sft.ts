/**
 * SFT on the synthesized traces, from a fresh model or a warm start: resumable from its intra
 * checkpoints, with a loss curve (and validation loss and greedy accuracy every `sft.evalEvery`
 * steps) kept in them, committed as the campaign's `sft` checkpoint.
 */
import type { CampaignConfig } from '../config/campaign';
import { greedyAccuracy } from '../evaluation/accuracy';
import { alphabetMismatch, type ModelConfig } from '../model/config';
import type { LlamaConfig } from '../model/llama-config';
import type { Policy } from '../model/policy';
import { decodeAnyState, encodeState, type TrainingState } from '../model/state';
import { datasetSpec, decodeSettings, heldOutSpec } from '../rules/campaign';
import { runId, SFT_RUN, sftHash } from '../rules/checkpoints';
import { sftCurveEntry } from '../rules/stages';
import { refOf, type CheckpointRef } from '../storage/manifest';
import { heldOut, validationTraces, type SftExample } from '../tasks/dataset';
import { SftTrainer } from '../training/sft';
import { ConfigError } from '../util/errors';
import { hashOf } from '../util/hash';
import type { SftInput, SftSummary } from '../contracts/campaign';
import { utf8, type StageContext } from './context';
import type { Policies } from './policies';
import { pruneIntra, runResumable } from './resumable';

export interface SftCurvePoint {
  step: number;
  loss: number;
  valLoss?: number;
  valAccuracy?: number;
}

export function sftActivities(ctx: StageContext) {
  const { store, backend, cache, policies } = ctx;

  async function readDataset(ref: CheckpointRef): Promise<SftExample[]> {
    const objects = await cache.get(ref);
    return Buffer.from(objects['sft.jsonl'])
      .toString('utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as SftExample);
  }

  return {
    async sftTrain(input: SftInput): Promise<SftSummary> {
      const { config } = input;
      const file = await ctx.loadTask(config);
      const format = await policies.format(config);
      const train = (await readDataset(input.dataset)).map((e) => format.buildExample(e));
      // Validation: teacher traces of held-out problems for the loss, their prompts for greedy accuracy.
      const valProblems = heldOut({ ...heldOutSpec(config), file }, 'val', config.data.valProblems);
      const valExamples = validationTraces(datasetSpec(config), valProblems).map(({ problem, trace }) =>
        format.buildExample({ prompt: problem.prompt, ...trace }),
      );
      const init = input.init ? await ctx.stateOf(input.init) : null;
      const t0 = performance.now();
      let tokens = 0;
      const last = { loss: NaN, valLoss: NaN, valAccuracy: NaN };
      // The loss curve, kept in intra checkpoints so a resumed run has it all.
      let curve: SftCurvePoint[] = [];
      const configHash = sftHash(hashOf, config, input.dataset, input.init);
      const { state: trainer, resumedFromStep } = await runResumable<SftTrainer<Policy>>({
        store,
        campaignId: input.campaignId,
        run: SFT_RUN,
        parent: input.init ?? input.dataset,
        configHash,
        backend,
        totalSteps: config.sft.steps,
        checkpointEvery: config.checkpoints.sftEvery,
        tensorboard: { run: SFT_RUN, stepBase: 0 },
        async fresh() {
          return SftTrainer.start(await startingPolicy(policies, config, init), config.sft, train, config.seed);
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
          const entry = sftCurveEntry(config.sft, done);
          if (entry === 'eval') {
            last.valLoss = valExamples.length ? t.validationLoss(valExamples) : NaN;
            last.valAccuracy = (await greedyAccuracy(t.model, valProblems, decodeSettings(config))).passAt1;
            curve.push({ step: done, loss: r.loss, valLoss: last.valLoss, valAccuracy: last.valAccuracy });
          } else if (entry === 'loss') curve.push({ step: done, loss: r.loss });
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
            id: runId(input.campaignId, SFT_RUN),
            kind: 'sft',
            step: trainer.step,
            parent: input.init?.id ?? input.dataset.id,
            configHash,
            backend,
            meta: { trainLoss: last.loss, valLoss: last.valLoss, valAccuracy: last.valAccuracy, params: trainer.model.paramCount(), curve },
          },
          { state: encodeState(trainer.state()) },
        );
        await pruneIntra(store, input.campaignId, SFT_RUN, config.checkpoints.keepPartials);
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
  };
}

/** The policy to start SFT from: fresh, or a warm start's weights (ours into a fresh model of this config; a pretrained one as it was). */
async function startingPolicy(
  policies: Policies,
  config: CampaignConfig,
  init: TrainingState<ModelConfig | LlamaConfig> | null,
): Promise<Policy> {
  if (init && 'architecture' in init.config) return policies.fromState(config, init);
  if (init && config.model.base) throw new ConfigError('model.base: the warm-start checkpoint is one of our transformer, not of this base');
  const mismatch = init && alphabetMismatch(init.config as ModelConfig, config.model);
  if (mismatch) throw new ConfigError(mismatch);
  const model = await policies.fresh(config, config.seed);
  if (init) model.setWeights(init.weights);
  return model;
}
