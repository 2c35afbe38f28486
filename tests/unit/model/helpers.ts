import * as tf from '@tensorflow/tfjs';
import { beforeAll } from 'vitest';
import { initBackend } from '../../../model/backend';
import { modelConfig, type ModelConfig } from '../../../model/config';

/** Unit tests run on wasm: the realistic CI backend. */
export function useWasm(): void {
  beforeAll(async () => {
    await initBackend('wasm');
  });
}

/** A model small enough for exhaustive checks. */
export function tinyConfig(over: Partial<ModelConfig> = {}): ModelConfig {
  return modelConfig({ vocabSize: 101, contextLength: 16, dModel: 16, nLayers: 2, nHeads: 2, dFF: 32, ...over });
}

/** Runs f and asserts it leaves no tensors behind. */
export async function expectNoLeak<T>(f: () => T | Promise<T>): Promise<T> {
  const before = tf.memory().numTensors;
  const out = await f();
  const after = tf.memory().numTensors;
  if (after !== before) throw new Error(`tensor leak: ${before} -> ${after}`);
  return out;
}
