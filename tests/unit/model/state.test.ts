import { describe, expect, it } from 'vitest';
import { llamaParamShapes } from '../../../model/shapes';
import { LlamaConfigSchema } from '../../../model/llama-config';
import { decodeLlamaState, decodeState, encodeState, type TrainingState } from '../../../model/state';
import { Transformer } from '../../../model/transformer';
import { Prng } from '../../../util/prng';
import { tinyConfig, useBackend } from './helpers';

useBackend();

function sampleState(): TrainingState {
  const model = new Transformer(tinyConfig(), new Prng(1));
  const weights = model.getWeights();
  model.dispose();
  const odd = (w: Float32Array) => w.map((x, i) => (i % 3 === 0 ? -x : x * 1e-38)); // signs, subnormals
  return {
    config: tinyConfig(),
    step: 42,
    prng: new Prng(9).state(),
    cursor: { epoch: 3, index: 17 },
    weights,
    optimizer: {
      t: 42,
      m: Object.fromEntries(Object.entries(weights).map(([k, w]) => [k, odd(w)])),
      v: Object.fromEntries(Object.entries(weights).map(([k, w]) => [k, w.map((x) => x * x)])),
    },
    arrays: { anchor: { wte: weights.wte.map((x) => x + 1) } },
    extra: { note: 'sft', lr: 3e-4 },
  };
}

describe('training state bytes', () => {
  it('round-trips every field bit for bit', () => {
    const s = sampleState();
    const bytes = encodeState(s);
    const back = decodeState(bytes);
    expect(back).toEqual(s);
    for (const [k, w] of Object.entries(s.optimizer.m)) {
      expect(new Uint32Array(back.optimizer.m[k].buffer)).toEqual(new Uint32Array(w.buffer)); // bitwise, incl. -0 and subnormals
    }
    expect(encodeState(back)).toEqual(bytes);
  });

  it('decodes from an unaligned view', () => {
    const bytes = encodeState(sampleState());
    const shifted = new Uint8Array(bytes.length + 1);
    shifted.set(bytes, 1);
    expect(decodeState(shifted.subarray(1))).toEqual(decodeState(bytes));
  });

  it('rejects foreign and truncated bytes', () => {
    const bytes = encodeState(sampleState());
    expect(() => decodeState(new TextEncoder().encode('{"json": true}'))).toThrow(/bad magic/);
    expect(() => decodeState(bytes.subarray(0, bytes.length - 4))).toThrow(/truncated/);
  });

  it('round-trips a Llama-family state (a model from a pretrained base) bit for bit, and tells the families apart', () => {
    const config = LlamaConfigSchema.parse({
      architecture: 'Qwen2ForCausalLM',
      vocabSize: 11,
      dModel: 8,
      nLayers: 1,
      nHeads: 2,
      nKvHeads: 1,
      headDim: 4,
      dFF: 12,
      contextLength: 32,
      ropeTheta: 1e6,
      rmsEps: 1e-6,
      tieEmbeddings: false,
      qkvBias: true,
    });
    const rng = new Prng(4);
    const weights = Object.fromEntries(
      llamaParamShapes(config).map(([n, shape]) => [
        n,
        Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal()),
      ]),
    );
    const s: TrainingState<typeof config> = {
      config,
      step: 7,
      prng: rng.state(),
      cursor: { index: 3 },
      weights,
      optimizer: { t: 7, m: weights, v: weights },
    };
    const bytes = encodeState(s);
    const back = decodeLlamaState(bytes);
    expect(back).toEqual(s);
    expect(encodeState(back)).toEqual(bytes);
    expect(() => decodeState(bytes)).toThrow('state: a Qwen2ForCausalLM (Llama-family) state, not one of our transformer');
    expect(() => decodeLlamaState(encodeState(sampleState()))).toThrow('state: a state of our transformer, not of a Llama-family model');
  });
});
