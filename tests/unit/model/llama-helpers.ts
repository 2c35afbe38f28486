/** Tiny Llama-family models for the unit tests: configs, random weights and adapters, logits. */
import * as tf from '@tensorflow/tfjs';
import type { Llama } from '../../../model/llama';
import { llamaParamShapes } from '../../../model/shapes';
import { LlamaConfigSchema, type LlamaConfig } from '../../../model/llama-config';
import { loraParamShapes, type LoraAdapters } from '../../../model/lora';
import { LoraConfigSchema, type LoraConfig } from '../../../model/lora-config';
import type { NamedArrays } from '../../../model/params';
import { Prng } from '../../../util/prng';

/** A Llama small enough for exhaustive checks: GQA 4/2, head size 8 (H*K = 32 != D: no projection is square), q/k/v biases, untied head. */
export function tinyLlama(over: Partial<LlamaConfig> = {}): LlamaConfig {
  return LlamaConfigSchema.parse({
    architecture: 'LlamaForCausalLM',
    vocabSize: 37,
    dModel: 16,
    nLayers: 2,
    nHeads: 4,
    nKvHeads: 2,
    headDim: 8,
    dFF: 24,
    contextLength: 64,
    ropeTheta: 10000,
    rmsEps: 1e-5,
    tieEmbeddings: false,
    qkvBias: true,
    ...over,
  });
}

/** Weights drawn from Prng(seed): gains 1 + 0.2 N(0,1), everything else std N(0,1). */
export function randomWeights(c: LlamaConfig, seed: number, std = 0.3): NamedArrays {
  const rng = new Prng(seed);
  return Object.fromEntries(
    llamaParamShapes(c).map(([name, shape]) => {
      const v = new Float32Array(shape.reduce((a, b) => a * b, 1));
      for (let i = 0; i < v.length; i++) v[i] = name.endsWith('.g') ? 1 + 0.2 * rng.normal() : std * rng.normal();
      return [name, v];
    }),
  );
}

/** Adapters with every A and B random, std N(0,1) from Prng(seed) (a trained adapter: B non-zero). */
export function randomAdapters(c: LlamaConfig, lora: Partial<LoraConfig>, seed: number, std = 0.3): LoraAdapters {
  const config = LoraConfigSchema.parse(lora);
  const rng = new Prng(seed);
  const weights = Object.fromEntries(
    loraParamShapes(c, config).map(([name, [r, k]]) => [name, Float32Array.from({ length: r * k }, () => std * rng.normal())]),
  );
  return { config, weights };
}

/** Llama.forward's logits of these rows of tokens, flat. */
export function logitsOf(m: Llama, rows: number[][], options?: Parameters<Llama['forward']>[1]): Float32Array {
  return tf.tidy(() => m.forward(tf.tensor2d(rows, undefined, 'int32'), options).dataSync() as Float32Array);
}

/**
 * Mean softmax cross-entropy of m's next-token predictions on a fixed batch (two rows of 5 tokens,
 * ids below 23: a vocabulary of 23 or more), and the batch's tensors to dispose after.
 */
export function batchLoss(m: Llama): { loss: () => tf.Scalar; tensors: tf.Tensor[] } {
  const V = m.config.vocabSize;
  const rows = [
    [1, 7, 3, 9, 2],
    [5, 5, 0, 22, 14],
  ];
  const targets = [
    [7, 3, 9, 2, 4],
    [5, 0, 22, 14, 6],
  ];
  const x = tf.tensor2d(rows, undefined, 'int32');
  const y = tf.oneHot(tf.tensor1d(targets.flat(), 'int32'), V).cast('float32');
  const loss = () =>
    tf.tidy(() => {
      const logits = m.forward(x).reshape([-1, V]);
      return tf.losses.softmaxCrossEntropy(y, logits) as tf.Scalar;
    });
  return { loss, tensors: [x, y] };
}
