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
  patched,
  proxyActivities,
  setHandler,
  upsertMemo,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { z } from 'zod';
import { CampaignConfigSchema, applyHyperparameters, type CampaignConfig } from '../config/campaign';
import { SA } from '../config/search-attributes';
import { anchorAfterEpoch } from '../rules/anchor';
import { anchorRefreshDue, relativeBudgets, scalingCheckpoints, scalingSweep } from '../rules/campaign';
import type { CheckpointRef } from '../storage/manifest';
import type { WeightsRef } from '../storage/weights';
import type {
  Accuracy,
  CampaignActivities,
  CampaignResult,
  CampaignState,
  EvalSummary,
  ScalingActivities,
  ScalingPoint,
  SftStage,
} from '../contracts/campaign';
import { boundary, pausable } from './pausable';
import { QUEUES } from '../contracts/queues';
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

/**
 * The workflow itself: checks its input, builds the run and wires the handlers to it (as Temporal's
 * safe-message-handlers sample does), then runs the stages.
 */
export async function campaignWorkflow(input: CampaignInput): Promise<CampaignResult> {
  // A refused input fails the workflow (not its task, which Temporal would retry forever), naming the fields.
  const { config } = parseOrFail(CampaignInputSchema, input, 'campaign input');
  const run = new CampaignRun(input, config);
  setHandler(statusQuery, () => run.status());
  setHandler(pauseSignal, () => run.pause());
  setHandler(resumeSignal, () => run.resume());
  setHandler(setHyperparametersUpdate, (changes) => run.setHyperparameters(changes), {
    // Rejected updates never enter history: the validator throws, naming the field.
    validator: (changes) => run.validateHyperparameters(changes),
  });
  return run.execute();
}

/**
 * One run of a campaign (continue-as-new starts the next with `state` carried): its state as
 * fields, the handlers' effects and one method per stage. Each stage method skips what `state`
 * already holds, so a continued run or a campaign started from another's SFT stage picks up
 * where that left off.
 */
class CampaignRun {
  readonly id: string;
  readonly runs: number;
  readonly state: CampaignState;
  /** The config in force: the parsed input's, pinned (jsonl) and changed by updates at epoch boundaries. */
  config: CampaignConfig;
  /** The workflow's root scope: its cancellation is a cancel, not a pause. */
  private readonly root = CancellationScope.current();

  constructor(
    private readonly input: CampaignInput,
    config: CampaignConfig,
  ) {
    this.id = input.campaignId;
    this.config = config;
    this.runs = input.run ?? 1;
    this.state = input.carried ?? {
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
  }

  // --- handlers ---

  status(): CampaignStatus {
    const { state, config } = this;
    return {
      ...state,
      campaignId: this.id,
      preset: this.input.preset,
      config,
      nextConfig: applyHyperparameters(config, state.pendingChanges),
      runs: this.runs,
    };
  }

  pause(): void {
    this.state.paused = true;
  }

  resume(): void {
    this.state.paused = false;
  }

  setHyperparameters(changes: Record<string, unknown>): CampaignConfig {
    this.state.pendingChanges = { ...this.state.pendingChanges, ...changes };
    return applyHyperparameters(this.config, this.state.pendingChanges);
  }

  validateHyperparameters(changes: Record<string, unknown>): void {
    applyHyperparameters(this.config, { ...this.state.pendingChanges, ...changes });
  }

  // --- the stages ---

  async execute(): Promise<CampaignResult> {
    upsertSearchAttributes([
      { key: SA.campaignId, value: this.id },
      { key: SA.preset, value: this.input.preset ?? 'custom' },
    ]);
    const { config } = this;
    upsertMemo({
      runs: this.runs,
      task: config.task.name,
      model: config.model.base ? config.model.base.uri : `${config.model.nLayers}x${config.model.dModel}`,
      seed: config.seed,
    });
    try {
      await this.synthesize();
      await this.evaluateBase();
      await this.sft();
      const sftEval = await this.evaluateSft();
      await this.filter();
      await this.rlEpochs();
      const final = await this.evaluate(sftEval);
      return this.finish(sftEval, final);
    } catch (e) {
      if (isCancellation(e)) {
        // Record the end in the UI even though the workflow is cancelled.
        await CancellationScope.nonCancellable(async () => this.setStage('cancelled'));
      } else if (!(e instanceof ApplicationFailure)) {
        this.setStage('failed');
      }
      throw e;
    }
  }

  async synthesize(): Promise<void> {
    // A jsonl campaign started without its file pinned (by a schedule): pin it now, so every stage reads the same bytes.
    if (this.config.task.name === 'jsonl' && !this.config.task.sha256) {
      this.setStage('synthesize');
      this.config = await cpu.pinTask.executeWithOptions({ summary: `pin ${this.config.task.file}` }, [{ config: this.config }]);
    }
    if (this.state.dataset) return;
    const { config } = this;
    this.setStage('synthesize');
    this.state.dataset = await cpu.synthesize.executeWithOptions(
      { summary: `synthesize ${config.data.sftExamples} ${config.task.name} traces` },
      [{ campaignId: this.id, config }],
    );
    await this.boundary();
  }

  /** Zero-shot, before SFT: the number a team compares the campaign against. */
  async evaluateBase(): Promise<void> {
    const { config, state } = this;
    if (!config.model.base || state.evals.some((e) => e.label === 'base')) return;
    this.setStage('evaluate-base');
    state.evals.push(
      await gpu.evaluate.executeWithOptions({ summary: 'evaluate the pretrained base zero-shot' }, [
        { campaignId: this.id, config, checkpoint: null, label: 'base' },
      ]),
    );
  }

  async sft(): Promise<void> {
    const { config, state } = this;
    if (state.sft) return;
    this.setStage('sft');
    const dataset = state.dataset!;
    const sft = await this.pausable(() =>
      gpu.sftTrain.executeWithOptions({ summary: `SFT ${config.sft.steps} steps` }, [
        { campaignId: this.id, config, dataset, init: this.input.warmStart ?? null },
      ]),
    );
    state.sft = sft;
    state.policy = sft.checkpoint;
    state.anchor = sft.checkpoint;
    await this.boundary();
  }

  /** The SFT checkpoint's evaluation: what RL is compared against. */
  async evaluateSft(): Promise<EvalSummary> {
    const { config, state } = this;
    if (!state.evals.some((e) => e.label === 'sft')) {
      this.setStage('evaluate-sft');
      const e = await gpu.evaluate.executeWithOptions({ summary: 'evaluate SFT checkpoint' }, [
        { campaignId: this.id, config, checkpoint: state.sft!.checkpoint, label: 'sft' },
      ]);
      this.recordBest(e);
      state.evals.push(e);
    }
    return state.evals.find((e) => e.label === 'sft')!;
  }

  async filter(): Promise<void> {
    const { config, state } = this;
    // rl.filter was ignored before it was wired in: a campaign that set it replays without the filter.
    if (!(config.rl.filter.enabled && !state.promptFilter && patched('rl-filter'))) return;
    this.setStage('filter');
    state.promptFilter = await gpu.filterPrompts.executeWithOptions(
      { summary: `difficulty filter over ${config.rl.filter.candidates} RL prompts` },
      [{ campaignId: this.id, config, policy: state.sft!.checkpoint }],
    );
    await this.boundary();
  }

  /**
   * RL epochs up to rl.epochs: pending hyper-parameter changes applied at each epoch boundary, the
   * anchor moved as rules/anchor.ts and rules/campaign.ts say, continue-as-new when due.
   */
  async rlEpochs(): Promise<void> {
    const { state, input } = this;
    this.setStage('rl');
    const firstEpochThisRun = state.epoch;
    while (state.epoch < this.config.rl.epochs) {
      await this.boundary();
      if (Object.keys(state.pendingChanges).length) {
        this.config = applyHyperparameters(this.config, state.pendingChanges);
        state.configTimeline.push({ epoch: state.epoch + 1, changes: state.pendingChanges });
        state.pendingChanges = {};
        if (state.epoch >= this.config.rl.epochs) break; // epochs were lowered
      }
      const { config } = this;
      const epoch = state.epoch + 1;
      const args = {
        campaignId: this.id,
        config,
        epoch,
        policy: state.policy!,
        anchor: state.anchor!,
        ...(state.promptFilter && { filter: state.promptFilter.checkpoint }),
      };
      const summary = await this.pausable(() =>
        gpu.rlEpoch.executeWithOptions({ summary: `RL epoch ${epoch}/${config.rl.epochs}` }, [args]),
      );
      state.epochs.push(summary);
      state.policy = summary.checkpoint;
      state.epoch = epoch;
      upsertSearchAttributes([{ key: SA.epoch, value: epoch }]);
      state.anchor = anchorAfterEpoch(config.rl, state.anchor, summary.anchor);
      if (anchorRefreshDue(config.rl, epoch)) {
        // The refresh is its own step in history: anchor := current policy.
        state.anchor = await cpu.refreshAnchor.executeWithOptions({ summary: `anchor := policy after epoch ${epoch}` }, [
          { campaignId: this.id, epoch, policy: state.policy },
        ]);
        state.anchorRefreshes.push({ epoch, anchor: state.anchor });
      }
      const runFull = input.epochsPerRun !== undefined && state.epoch - firstEpochThisRun >= input.epochsPerRun;
      if ((workflowInfo().continueAsNewSuggested || runFull) && state.epoch < config.rl.epochs) {
        await condition(allHandlersFinished);
        await continueAsNew<typeof campaignWorkflow>({ ...input, config, carried: state, run: this.runs + 1 });
      }
    }
  }

  /** The final checkpoint's evaluation, then the inference-scaling sweep. */
  async evaluate(sftEval: EvalSummary): Promise<EvalSummary> {
    const { config, state } = this;
    this.setStage('evaluate');
    // Compared with SFT on the same test problems, each at its own best setting: the campaign's headline.
    const final = await gpu.evaluate.executeWithOptions({ summary: 'evaluate final checkpoint' }, [
      { campaignId: this.id, config, checkpoint: state.policy!, label: 'final', versus: sftEval },
    ]);
    this.recordBest(final);
    state.evals.push(final);
    if (config.eval.scaling.enabled && !state.scaling.length) state.scaling = await this.inferenceScaling();
    return final;
  }

  /** The paper's figure: SFT and RL checkpoints, each at every budget and untruncated, in parallel on the eval queue. */
  async inferenceScaling(): Promise<ScalingPoint[]> {
    const { config, state } = this;
    const checkpoints = scalingCheckpoints(
      state.sft!.checkpoint,
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
        { campaignId: this.id, config, checkpoint, label, budget, ...(weights && { weights }) },
      ]);
    };
    const fixed = config.eval.scaling.budgets;
    return fixed
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

  finish(sftEval: EvalSummary, final: EvalSummary): CampaignResult {
    const { state } = this;
    this.setStage('done');
    return {
      id: this.id,
      status: 'completed',
      preset: this.input.preset,
      config: this.config,
      results: { sft: headline(sftEval), final: headline(final), ...(final.versus && { gain: final.versus }) },
      sftStage: { dataset: state.dataset!, sft: state.sft!, evaluation: sftEval },
      checkpoints: { sft: state.sft!.checkpoint, final: state.policy! },
      evals: state.evals,
      epochs: state.epochs,
      anchorRefreshes: state.anchorRefreshes,
      configTimeline: state.configTimeline,
      scaling: state.scaling,
    };
  }

  // --- helpers ---

  private setStage(stage: CampaignState['stage']): void {
    this.state.stage = stage;
    upsertSearchAttributes([
      { key: SA.stage, value: stage },
      { key: SA.epoch, value: this.state.epoch },
    ]);
  }

  private recordBest(e: EvalSummary): void {
    const best = Math.max(...this.state.evals.map((x) => x.accuracy), e.accuracy);
    upsertSearchAttributes([{ key: SA.bestAccuracy, value: best }]);
  }

  private boundary(): Promise<void> {
    return boundary(this.state);
  }

  private pausable<T>(fn: () => Promise<T>): Promise<T> {
    return pausable(this.state, this.root, fn);
  }
}

const headline = ({ accuracy, stderr, greedyAccuracy, temperature }: EvalSummary): Accuracy => ({
  accuracy,
  stderr,
  greedyAccuracy,
  temperature,
});
