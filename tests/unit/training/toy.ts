/** Toy SFT data for tests: reverse a digit string, in the T1 trace shape. No test-runner imports (spawned scripts use it). */
import { modelConfig, type ModelConfig } from '../../../model/config';
import { buildExample, type Example, type Trace } from '../../../model/tokenizer';
import { Prng } from '../../../util/prng';

export function reverseTask(n: number, seed: number, digits = 4): Trace[] {
  const rng = new Prng(seed);
  return Array.from({ length: n }, () => {
    const s = Array.from({ length: digits }, () => rng.int(10)).join('');
    return { prompt: `rev ${s}`, reasoning: `${s[0]}..${s[digits - 1]}`, answer: [...s].reverse().join(''), verification: '!' };
  });
}

export function reverseExamples(n: number, seed: number): Example[] {
  return reverseTask(n, seed).map(buildExample);
}

export function smallConfig(over: Partial<ModelConfig> = {}): ModelConfig {
  return modelConfig({ contextLength: 24, dModel: 32, nLayers: 2, nHeads: 2, dFF: 64, ...over });
}
