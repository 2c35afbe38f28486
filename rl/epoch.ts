/**
 * RL epochs: `stepsPerEpoch` steps over the RL prompt pool, B prompts per step taken at a durable
 * cursor. Everything a resumed run needs (policy, anchor, AdamW moments, Prng, cursor) is in
 * `state()`, so training resumed from any step boundary computes exactly what an uninterrupted
 * run would (bit for bit on a deterministic backend).
 */
import type { ModelConfig } from '../model/config';
import type { LlamaConfig } from '../model/llama-config';
import type { Policy } from '../model/policy';
import type { TrainingState } from '../model/state';
import { Transformer } from '../model/transformer';
import { AdamW } from '../training/adamw';
import { Prng } from '../util/prng';
import { anchorAfterStep } from './anchor';
import { resultConfig, rlLearningRate, type RlConfig } from './config';
import type { JsonlDataset } from '../tasks/jsonl';
import { PromptPool, type PromptSource } from './prompts';
import type { Scoring } from './loss';
import type { Rollouts } from './rollout';
import { rlStep, type RlStepMetrics } from './step';

/** Where an RL run stands: JSON, stored as the training state's cursor. */
export interface RlCursor {
  /** RL epochs completed. */
  epoch: number;
  /** Steps done in the current epoch. */
  stepInEpoch: number;
  /** Next prompt position in the pool. */
  prompt: number;
}

export interface RlEpochResult {
  /** Epochs completed (this one included). */
  epoch: number;
  steps: RlStepMetrics[];
  /** Means over the epoch's steps (tokens/s: totals over total seconds). */
  summary: RlStepMetrics;
}

export class RlTrainer<M extends Policy = Policy> {
  private readonly optimizer: AdamW;
  /** Who samples each step's responses and scores the anchor's log-probs (rl.rollout); default: this process. */
  rollouts?: Rollouts;
  scoring?: Scoring;

  private constructor(
    readonly policy: M,
    readonly anchor: M,
    public config: RlConfig,
    readonly pool: PromptPool,
    private readonly rng: Prng,
    private steps: number,
    private position: RlCursor,
    optimizerState?: TrainingState['optimizer'],
  ) {
    this.optimizer = new AdamW(policy.variables, policy.names, config.optimizer, optimizerState);
  }

  /**
   * A fresh run: takes ownership of `policy` and `anchor` (e.g. both loaded from the SFT
   * checkpoint) and starts a new optimizer and the prompt cursor at 0.
   */
  static create<M extends Policy>(
    policy: M,
    anchor: M,
    config: RlConfig,
    source: PromptSource,
    seed: number,
    file?: JsonlDataset,
  ): RlTrainer<M> {
    const pool = new PromptPool(source, file);
    return new RlTrainer(policy, anchor, config, pool, new Prng(seed).fork('rl'), 0, { epoch: 0, stepInEpoch: 0, prompt: 0 });
  }

  /**
   * Continues exactly where `state` was taken. `config` may differ (hyperparameters changed between
   * epochs). `models`: the state's policy and anchor already built (a pretrained policy needs its
   * base); default our transformer from the state.
   */
  static fromState<M extends Policy = Transformer>(
    state: TrainingState<ModelConfig | LlamaConfig>,
    config: RlConfig,
    source: PromptSource,
    models?: { policy: M; anchor: M },
    file?: JsonlDataset,
  ): RlTrainer<M> {
    const anchor = state.arrays?.anchor;
    if (!anchor) throw new Error('rl resume: the state holds no anchor weights');
    return new RlTrainer(
      models?.policy ?? (new Transformer(state.config as ModelConfig, state.weights) as Policy as M),
      models?.anchor ?? (new Transformer(state.config as ModelConfig, anchor) as Policy as M),
      config,
      new PromptPool(source, file),
      new Prng(state.prng),
      state.step,
      state.cursor as RlCursor,
      state.optimizer,
    );
  }

  get cursor(): RlCursor {
    return { ...this.position };
  }

  /**
   * One RL step on the next B prompts (and, with dynamic sampling, the further prompts its refills
   * take: the cursor moves past every prompt sampled); in ema mode the anchor follows afterwards.
   */
  async step(): Promise<RlStepMetrics> {
    const B = this.config.promptsPerStep;
    let next = this.position.prompt;
    const take = (n: number) => {
      const problems = this.pool.take(next, n);
      next += n;
      return problems;
    };
    const metrics = await rlStep({
      policy: this.policy,
      anchor: this.anchor,
      optimizer: this.optimizer,
      problems: take(B),
      moreProblems: take,
      config: this.config,
      lr: rlLearningRate(this.config, this.steps),
      rng: this.rng,
      rollouts: this.rollouts,
      scoring: this.scoring,
    });
    anchorAfterStep(this.anchor, this.policy, this.config.anchor);
    this.steps += 1;
    const { epoch, stepInEpoch } = this.position;
    const ends = stepInEpoch + 1 >= this.config.stepsPerEpoch;
    this.position = { epoch: ends ? epoch + 1 : epoch, stepInEpoch: ends ? 0 : stepInEpoch + 1, prompt: next };
    return metrics;
  }

  /**
   * Steps until the current epoch ends (a whole epoch from a boundary, the remainder after a
   * mid-epoch resume). `onStep` sees each step's metrics with the trainer in its post-step state,
   * so it may checkpoint `state()`; it is awaited, which also lets heartbeats through.
   */
  async runEpoch(onStep?: (metrics: RlStepMetrics, trainer: RlTrainer<M>) => void | Promise<void>): Promise<RlEpochResult> {
    const epoch = this.position.epoch;
    const steps: RlStepMetrics[] = [];
    while (this.position.epoch === epoch) {
      const m = await this.step();
      steps.push(m);
      await onStep?.(m, this);
    }
    return { epoch: epoch + 1, steps, summary: summarise(steps) };
  }

  /** Policy, anchor (as extra arrays), AdamW moments, Prng and cursor; `step` counts RL steps. */
  state(): TrainingState<ModelConfig | LlamaConfig> {
    return {
      config: this.policy.config,
      step: this.steps,
      prng: this.rng.state(),
      cursor: this.cursor,
      weights: this.policy.getWeights(),
      optimizer: this.optimizer.getState(),
      arrays: { anchor: this.anchor.getWeights() },
      extra: { rl: resultConfig(this.config), source: this.pool.source, ...(this.policy.origin && { origin: this.policy.origin }) },
    };
  }

  dispose(): void {
    this.optimizer.dispose();
    this.policy.dispose();
    this.anchor.dispose();
  }
}

/**
 * Per-step means, skipping NaN (loss and gradNorm of steps without an update); rates are
 * recomputed from totals so slow steps weigh by their time.
 */
export function summarise(steps: readonly RlStepMetrics[]): RlStepMetrics {
  if (!steps.length) throw new Error('summarise: no steps');
  const avg = (k: keyof RlStepMetrics) => {
    const xs = steps.map((m) => m[k]).filter((x) => !Number.isNaN(x));
    return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN;
  };
  const out = Object.fromEntries(Object.keys(steps[0]).map((k) => [k, avg(k as keyof RlStepMetrics)])) as unknown as RlStepMetrics;
  const total = (k: keyof RlStepMetrics) => steps.reduce((s, m) => s + m[k], 0);
  out.samplingTokensPerS = total('sampledTokens') / total('samplingSeconds');
  out.updateTokensPerS = total('updatePositions') / total('updateSeconds');
  return out;
}
