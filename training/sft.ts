/**
 * Supervised fine-tuning: next-token cross-entropy on response tokens only, AdamW, warmup +
 * cosine learning rate, global-norm clipping, gradient accumulation over micro-batches, and a
 * deterministic data order. Everything needed to resume exactly is in `state()`.
 */
import * as tf from '@tensorflow/tfjs';
import { Prng } from '../util/prng';
import { collate, disposeBatch } from '../model/batch';
import type { ModelConfig } from '../model/config';
import type { LlamaConfig } from '../model/llama-config';
import type { Policy } from '../model/policy';
import type { TrainingState } from '../model/state';
import type { Example } from '../model/tokenizer';
import { Transformer } from '../model/transformer';
import { AdamW } from './adamw';
import { AdamWConfigSchema } from './adamw-config';
import { clipByGlobalNorm } from './clip';
import { DataOrder, type DataCursor } from './data';
import { maskedNllSum } from './loss';
import { lrAt, type LrSchedule } from './schedule';
import { SftConfigSchema, type SftConfig, type SftConfigInput } from './sft-config';

/** The update's learning-rate schedule over the config's `steps`. */
export const scheduleOf = (c: SftConfig): LrSchedule => ({ lr: c.lr, minLr: c.minLr, warmupSteps: c.warmupSteps, totalSteps: c.steps });

export interface SftStepResult {
  /** Updates done after this one. */
  step: number;
  /** Mean cross-entropy (nats) per response token of the batch. */
  loss: number;
  /** Response (loss) tokens in the batch. */
  tokens: number;
  /** Positions processed (batch x padded length): what the compute scales with. */
  positions: number;
  gradNorm: number;
  lr: number;
}

export class SftTrainer<M extends Policy = Policy> {
  private readonly optimizer: AdamW;
  private readonly microBatchSize: number;
  private readonly data: DataOrder;

  private constructor(
    readonly model: M,
    readonly config: SftConfig,
    private readonly train: readonly Example[],
    private readonly rng: Prng,
    private stepCount: number,
    cursor: DataCursor,
    optimizerState?: TrainingState['optimizer'],
  ) {
    this.microBatchSize = config.microBatchSize ?? config.batchSize;
    this.optimizer = new AdamW(model.variables, model.names, AdamWConfigSchema.parse({ weightDecay: config.weightDecay }), optimizerState);
    this.data = new DataOrder(train.length, rng, cursor);
  }

  /** Fresh model from `seed` (init and data order use separate forks of it). */
  static create(modelConfig: ModelConfig, config: SftConfigInput, train: readonly Example[], seed: number): SftTrainer<Transformer> {
    return SftTrainer.start(new Transformer(modelConfig, new Prng(seed).fork('init')), config, train, seed);
  }

  /** A fresh run on `model` (taken over: the trainer disposes it): a new optimizer, the data order from `seed`. */
  static start<M extends Policy>(model: M, config: SftConfigInput, train: readonly Example[], seed: number): SftTrainer<M> {
    return new SftTrainer(model, SftConfigSchema.parse(config), train, new Prng(seed).fork('data'), 0, { epoch: 0, index: 0 });
  }

  /**
   * Continues exactly where `state` was taken; `train` must be the same dataset. `model`: the state's
   * policy already built (a pretrained one needs its base); default our transformer from the state.
   */
  static fromState<M extends Policy = Transformer>(
    state: TrainingState<ModelConfig | LlamaConfig>,
    config: SftConfigInput,
    train: readonly Example[],
    model: M = new Transformer(state.config as ModelConfig, state.weights) as Policy as M,
  ): SftTrainer<M> {
    const extra = state.extra as { datasetSize?: number } | undefined;
    if (extra?.datasetSize !== undefined && extra.datasetSize !== train.length) {
      model.dispose();
      throw new Error(`sft resume: dataset has ${train.length} examples, the state was trained on ${extra.datasetSize}`);
    }
    return new SftTrainer(
      model,
      SftConfigSchema.parse(config),
      train,
      new Prng(state.prng),
      state.step,
      state.cursor as DataCursor,
      state.optimizer,
    );
  }

  get step(): number {
    return this.stepCount;
  }

  /** The next batchSize examples of the data order (advances the cursor). */
  nextBatch(): Example[] {
    return this.data.take(this.config.batchSize).map((i) => this.train[i]);
  }

  /** One optimizer update on `batch` (default: the next batch of the data order). */
  trainStep(batch: readonly Example[] = this.nextBatch()): SftStepResult {
    const { microBatchSize } = this;
    const { gradClip } = this.config;
    const C = this.model.config.contextLength;
    // Micro-batches of similar lengths: each is padded to its longest sequence only.
    const sorted = microBatchSize < batch.length ? batch.slice().sort((a, b) => a.tokens.length - b.tokens.length) : batch;
    const micro = [];
    for (let i = 0; i < sorted.length; i += microBatchSize) micro.push(collate(sorted.slice(i, i + microBatchSize), C));
    const tokens = micro.reduce((n, b) => n + b.count, 0);
    if (tokens === 0) throw new Error('sft: batch has no response tokens');
    let loss = 0;
    let positions = 0;
    let acc: tf.Tensor[] | null = null;
    for (const b of micro) {
      positions += b.inputs.size;
      // Each micro-batch contributes its NLL sum over the whole batch's token count: exact accumulation.
      const { value, grads } = tf.variableGrads(
        () => maskedNllSum(this.model.forward(b.inputs, this.rng), b.targets, b.mask).div(tokens) as tf.Scalar,
        this.model.variables,
      );
      loss += value.dataSync()[0];
      value.dispose();
      const gs = this.model.variables.map((v) => grads[v.name]);
      const sum: tf.Tensor[] = acc === null ? gs : gs.map((g, i) => g.add(acc![i]));
      if (acc !== null) tf.dispose([...acc, ...gs]);
      acc = sum;
      disposeBatch(b);
    }
    const clipped = clipByGlobalNorm(acc!, gradClip);
    tf.dispose(acc!);
    const lr = lrAt(this.stepCount, scheduleOf(this.config));
    this.optimizer.step(clipped.grads, lr);
    tf.dispose(clipped.grads);
    this.stepCount += 1;
    return { step: this.stepCount, loss, tokens, positions, gradNorm: clipped.norm, lr };
  }

  /** Mean response-token cross-entropy over `examples`. */
  validationLoss(examples: readonly Example[]): number {
    let sum = 0;
    let count = 0;
    for (let i = 0; i < examples.length; i += this.microBatchSize) {
      const b = collate(examples.slice(i, i + this.microBatchSize), this.model.config.contextLength);
      sum += tf.tidy(() => maskedNllSum(this.model.forward(b.inputs), b.targets, b.mask).dataSync()[0]);
      count += b.count;
      disposeBatch(b);
    }
    return sum / count;
  }

  /** Everything needed to continue exactly: weights, moments, step, Prng, data cursor. */
  state(): TrainingState<ModelConfig | LlamaConfig> {
    return {
      config: this.model.config,
      step: this.stepCount,
      prng: this.rng.state(),
      cursor: this.data.cursor,
      weights: this.model.getWeights(),
      optimizer: this.optimizer.getState(),
      extra: { datasetSize: this.train.length, sft: this.config, ...(this.model.origin && { origin: this.model.origin }) },
    };
  }

  dispose(): void {
    this.optimizer.dispose();
    this.model.dispose();
  }
}
