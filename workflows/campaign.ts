/**
 * The campaign: synthesize CoT data (CPU) -> SFT (GPU) -> RL epochs 1..N (GPU), the anchor
 * refreshed every E epochs as its own recorded step -> evaluation. Deterministic orchestration
 * only; payloads are checkpoint references and small metrics. Continues as new at epoch
 * boundaries when the server suggests it, so hundreds of epochs keep history small.
 */
import {
  allHandlersFinished,
  ApplicationFailure,
  CancellationScope,
  condition,
  continueAsNew,
  defineQuery,
  defineSignal,
  defineUpdate,
  isCancellation,
  log,
  patched,
  proxyActivities,
  setHandler,
  upsertMemo,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { z } from 'zod';
import type { CampaignActivities } from '../activities/campaign';
import type { ScalingActivities } from '../activities/scaling';
import { CampaignConfigSchema, applyHyperparameters, type CampaignConfig } from '../config/campaign';
import { SA } from '../config/search-attributes';
import { anchorRefreshDue, relativeBudgets, scalingCheckpoints, scalingSweep } from '../rules/campaign';
import type { CheckpointRef } from '../storage/manifest';
import type { WeightsRef } from '../storage/weights';
import type { Accuracy, CampaignResult, CampaignState, EvalSummary, SftStage } from '../contracts/campaign';
import { QUEUES } from './queues';
import { ACTIVITY_RETRY } from './retry';
import { parseOrFail } from './validate';

// A dead worker stops heartbeating: the 20 s heartbeat timeout hands the activity to another worker,
// which resumes from the last intra-activity checkpoint. Start-to-close is generous on purpose.
const gpu = proxyActivities<CampaignActivities>({
  taskQueue: QUEUES.gpu,
  startToCloseTimeout: '12h',
  heartbeatTimeout: '20s',
  retry: ACTIVITY_RETRY,
});
const cpu = proxyActivities<CampaignActivities>({
  taskQueue: QUEUES.cpu,
  startToCloseTimeout: '2h',
  heartbeatTimeout: '20s',
  retry: ACTIVITY_RETRY,
});
const evalQueue = proxyActivities<ScalingActivities>({
  taskQueue: QUEUES.eval,
  startToCloseTimeout: '2h',
  heartbeatTimeout: '20s',
  retry: ACTIVITY_RETRY,
});

export interface CampaignInput {
  campaignId: string;
  config: CampaignConfig;
  preset?: string;
  /** Start SFT from this checkpoint's weights (nightly retraining). */
  warmStart?: CheckpointRef | null;
  /**
   * Skip synthesis and SFT: start RL from another campaign's finished SFT stage (ablations that
   * share one SFT model). Its config must match this one outside `rl` and `eval`.
   */
  fromSft?: SftStage;
  /** Continue as new after this many RL epochs in one run (default: only when the server suggests it). */
  epochsPerRun?: number;
  /** Set only by continue-as-new. */
  carried?: CampaignState;
  run?: number;
}

const CheckpointRefSchema = z.looseObject({ id: z.string().min(1), sha256: z.string().min(1), step: z.number().int().min(0) });

/**
 * What the workflow checks of its input before it does anything: the config by the campaign schema
 * (the parsed config, defaults filled in, is the one the campaign runs), the rest by the fields it
 * reads. `carried` is the workflow's own state, handed over by continue-as-new.
 */
const CampaignInputSchema = z.looseObject({
  campaignId: z.string().min(1),
  config: CampaignConfigSchema,
  preset: z.string().optional(),
  warmStart: CheckpointRefSchema.nullish(),
  fromSft: z
    .looseObject({
      dataset: CheckpointRefSchema,
      sft: z.looseObject({ checkpoint: CheckpointRefSchema }),
      evaluation: z.looseObject({ label: z.string(), accuracy: z.number() }),
    })
    .optional(),
  epochsPerRun: z.number().int().positive().optional(),
  run: z.number().int().positive().optional(),
});

export interface CampaignStatus extends CampaignState {
  campaignId: string;
  preset?: string;
  config: CampaignConfig;
  /** The config the next epoch will use (pending changes applied). */
  nextConfig: CampaignConfig;
  runs: number;
}

export const statusQuery = defineQuery<CampaignStatus>('status');
export const pauseSignal = defineSignal('pause');
export const resumeSignal = defineSignal('resume');
export const setHyperparametersUpdate = defineUpdate<CampaignConfig, [Record<string, unknown>]>('setHyperparameters');

export async function campaignWorkflow(input: CampaignInput): Promise<CampaignResult> {
  // A refused input fails the workflow (not its task, which Temporal would retry forever), naming the fields.
  let { config } = parseOrFail(CampaignInputSchema, input, 'campaign input');
  const id = input.campaignId;
  const state: CampaignState = input.carried ?? {
    stage: 'synthesize',
    epoch: 0,
    paused: false,
    anchorRefreshes: [],
    epochs: [],
    evals: [],
    scaling: [],
    configTimeline: [],
    pendingChanges: {},
    ...(input.fromSft && {
      dataset: input.fromSft.dataset,
      sft: input.fromSft.sft,
      policy: input.fromSft.sft.checkpoint,
      anchor: input.fromSft.sft.checkpoint,
      evals: [input.fromSft.evaluation],
    }),
  };
  const runs = input.run ?? 1;

  setHandler(statusQuery, () => ({
    ...state,
    campaignId: id,
    preset: input.preset,
    config,
    nextConfig: applyHyperparameters(config, state.pendingChanges),
    runs,
  }));
  setHandler(pauseSignal, () => {
    state.paused = true;
  });
  setHandler(resumeSignal, () => {
    state.paused = false;
  });
  setHandler(
    setHyperparametersUpdate,
    (changes) => {
      state.pendingChanges = { ...state.pendingChanges, ...changes };
      return applyHyperparameters(config, state.pendingChanges);
    },
    // Rejected updates never enter history: the validator throws, naming the field.
    { validator: (changes) => void applyHyperparameters(config, { ...state.pendingChanges, ...changes }) },
  );

  const setStage = (stage: CampaignState['stage']) => {
    state.stage = stage;
    upsertSearchAttributes([
      { key: SA.stage, value: stage },
      { key: SA.epoch, value: state.epoch },
    ]);
  };
  const recordBest = (e: EvalSummary) => {
    const best = Math.max(...state.evals.map((x) => x.accuracy), e.accuracy);
    upsertSearchAttributes([{ key: SA.bestAccuracy, value: best }]);
  };
  const boundary = async () => {
    if (state.paused) log.info('paused; waiting for resume');
    await condition(() => !state.paused);
  };
  const root = CancellationScope.current();
  /**
   * Runs a training activity that a pause interrupts at its next step boundary: the activity
   * commits an intra-activity checkpoint and stops; after resume it runs again from there.
   */
  const pausable = async <T>(fn: () => Promise<T>): Promise<T> => {
    for (;;) {
      await boundary();
      const scope = new CancellationScope();
      const watcher = new CancellationScope();
      watcher
        .run(() => condition(() => state.paused))
        .then(
          () => scope.cancel(),
          () => undefined,
        );
      try {
        return await scope.run(fn);
      } catch (e) {
        if (!(isCancellation(e) && state.paused && !root.consideredCancelled)) throw e;
      } finally {
        watcher.cancel();
      }
    }
  };

  upsertSearchAttributes([
    { key: SA.campaignId, value: id },
    { key: SA.preset, value: input.preset ?? 'custom' },
  ]);
  upsertMemo({
    runs,
    task: config.task.name,
    model: config.model.base ? config.model.base.uri : `${config.model.nLayers}x${config.model.dModel}`,
    seed: config.seed,
  });

  try {
    // A jsonl campaign started without its file pinned (by a schedule): pin it now, so every stage reads the same bytes.
    if (config.task.name === 'jsonl' && !config.task.sha256) {
      setStage('synthesize');
      config = await cpu.pinTask.executeWithOptions({ summary: `pin ${config.task.file}` }, [{ config }]);
    }
    if (!state.dataset) {
      setStage('synthesize');
      state.dataset = await cpu.synthesize.executeWithOptions(
        { summary: `synthesize ${config.data.sftExamples} ${config.task.name} traces` },
        [{ campaignId: id, config }],
      );
      await boundary();
    }
    // Zero-shot, before SFT: the number a team compares the campaign against.
    if (config.model.base && !state.evals.some((e) => e.label === 'base')) {
      setStage('evaluate-base');
      state.evals.push(
        await gpu.evaluate.executeWithOptions({ summary: 'evaluate the pretrained base zero-shot' }, [
          { campaignId: id, config, checkpoint: null, label: 'base' },
        ]),
      );
    }
    if (!state.sft) {
      setStage('sft');
      const dataset = state.dataset;
      state.sft = await pausable(() =>
        gpu.sftTrain.executeWithOptions({ summary: `SFT ${config.sft.steps} steps` }, [
          { campaignId: id, config, dataset, init: input.warmStart ?? null },
        ]),
      );
      state.policy = state.sft.checkpoint;
      state.anchor = state.sft.checkpoint;
      await boundary();
    }
    if (!state.evals.some((e) => e.label === 'sft')) {
      setStage('evaluate-sft');
      const e = await gpu.evaluate.executeWithOptions({ summary: 'evaluate SFT checkpoint' }, [
        { campaignId: id, config, checkpoint: state.sft.checkpoint, label: 'sft' },
      ]);
      recordBest(e);
      state.evals.push(e);
    }

    // rl.filter was ignored before it was wired in: a campaign that set it replays without the filter.
    if (config.rl.filter.enabled && !state.promptFilter && patched('rl-filter')) {
      setStage('filter');
      state.promptFilter = await gpu.filterPrompts.executeWithOptions(
        { summary: `difficulty filter over ${config.rl.filter.candidates} RL prompts` },
        [{ campaignId: id, config, policy: state.sft.checkpoint }],
      );
      await boundary();
    }

    setStage('rl');
    const firstEpochThisRun = state.epoch;
    while (state.epoch < config.rl.epochs) {
      await boundary();
      if (Object.keys(state.pendingChanges).length) {
        config = applyHyperparameters(config, state.pendingChanges);
        state.configTimeline.push({ epoch: state.epoch + 1, changes: state.pendingChanges });
        state.pendingChanges = {};
        if (state.epoch >= config.rl.epochs) break; // epochs were lowered
      }
      const epoch = state.epoch + 1;
      const args = {
        campaignId: id,
        config,
        epoch,
        policy: state.policy!,
        anchor: state.anchor!,
        ...(state.promptFilter && { filter: state.promptFilter.checkpoint }),
      };
      const summary = await pausable(() => gpu.rlEpoch.executeWithOptions({ summary: `RL epoch ${epoch}/${config.rl.epochs}` }, [args]));
      state.epochs.push(summary);
      state.policy = summary.checkpoint;
      state.epoch = epoch;
      upsertSearchAttributes([{ key: SA.epoch, value: epoch }]);
      if (config.rl.anchor.mode === 'ema') state.anchor = summary.anchor ?? state.anchor;
      if (anchorRefreshDue(config.rl, epoch)) {
        // The refresh is its own step in history: anchor := current policy.
        state.anchor = await cpu.refreshAnchor.executeWithOptions({ summary: `anchor := policy after epoch ${epoch}` }, [
          { campaignId: id, epoch, policy: state.policy },
        ]);
        state.anchorRefreshes.push({ epoch, anchor: state.anchor });
      }
      const runFull = input.epochsPerRun !== undefined && state.epoch - firstEpochThisRun >= input.epochsPerRun;
      if ((workflowInfo().continueAsNewSuggested || runFull) && state.epoch < config.rl.epochs) {
        await condition(allHandlersFinished);
        await continueAsNew<typeof campaignWorkflow>({ ...input, config, carried: state, run: runs + 1 });
      }
    }

    setStage('evaluate');
    const sftEval = state.evals.find((e) => e.label === 'sft')!;
    // Compared with SFT on the same test problems, each at its own best setting: the campaign's headline.
    const final = await gpu.evaluate.executeWithOptions({ summary: 'evaluate final checkpoint' }, [
      { campaignId: id, config, checkpoint: state.policy!, label: 'final', versus: sftEval },
    ]);
    recordBest(final);
    state.evals.push(final);
    if (config.eval.scaling.enabled && !state.scaling.length) {
      // The paper's figure: SFT and RL checkpoints, each at every budget and untruncated, in parallel on the eval queue.
      const checkpoints = scalingCheckpoints(
        state.sft.checkpoint,
        state.epochs.map((e) => e.checkpoint),
      );
      // Each checkpoint's weights are published once; eval workers load those, as rollout workers do.
      const published = new Map<string, Promise<WeightsRef>>();
      if (patched('published-weights'))
        for (const { checkpoint } of checkpoints)
          if (!published.has(checkpoint.sha256))
            published.set(
              checkpoint.sha256,
              evalQueue.publishWeights.executeWithOptions({ summary: `publish ${checkpoint.id}` }, [{ checkpoint }]),
            );
      const point = async (label: string, checkpoint: CheckpointRef, budget: number | null) => {
        const weights = await published.get(checkpoint.sha256);
        return evalQueue.scalingPoint.executeWithOptions({ summary: `scaling ${label} @ ${budget ?? 'untruncated'}` }, [
          { campaignId: id, config, checkpoint, label, budget, ...(weights && { weights }) },
        ]);
      };
      const fixed = config.eval.scaling.budgets;
      state.scaling = fixed
        ? await Promise.all(scalingSweep(fixed, checkpoints).map(({ label, checkpoint, budget }) => point(label, checkpoint, budget)))
        : // Relative budgets: each checkpoint's untruncated run first, whose median reasoning length sets its budgets.
          (
            await Promise.all(
              checkpoints.map(async ({ label, checkpoint }) => {
                const full = await point(label, checkpoint, null);
                const budgets = relativeBudgets(full.medianReasoning!, config.eval.scaling.fractions);
                return [...(await Promise.all(budgets.map((b) => point(label, checkpoint, b)))), full];
              }),
            )
          ).flat();
    }
    setStage('done');
    return {
      id,
      status: 'completed',
      preset: input.preset,
      config,
      results: { sft: headline(sftEval), final: headline(final), ...(final.versus && { gain: final.versus }) },
      sftStage: { dataset: state.dataset!, sft: state.sft, evaluation: sftEval },
      checkpoints: { sft: state.sft.checkpoint, final: state.policy! },
      evals: state.evals,
      epochs: state.epochs,
      anchorRefreshes: state.anchorRefreshes,
      configTimeline: state.configTimeline,
      scaling: state.scaling,
    };
  } catch (e) {
    if (isCancellation(e)) {
      // Record the end in the UI even though the workflow is cancelled.
      await CancellationScope.nonCancellable(async () => setStage('cancelled'));
    } else if (!(e instanceof ApplicationFailure)) {
      setStage('failed');
    }
    throw e;
  }
}

const headline = ({ accuracy, stderr, greedyAccuracy, temperature }: EvalSummary): Accuracy => ({
  accuracy,
  stderr,
  greedyAccuracy,
  temperature,
});
