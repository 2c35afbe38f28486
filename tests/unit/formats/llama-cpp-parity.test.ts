/**
 * Our Llama on the real SmolLM2-135M-Instruct GGUF against llama.cpp (node-llama-cpp) on the same
 * file, on the native backend (what production runs): next-token distributions over 512+
 * positions of varied text. llama.cpp multiplies by the Q4_1 blocks with 8-bit-quantized
 * activations; we dequantize to float32 once, so the two differ by rounding, not by model.
 */
import * as tf from '@tensorflow/tfjs';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getLlama, LlamaLogLevel, type Llama as LlamaCpp, type LlamaModel } from 'node-llama-cpp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportGguf, exportHf } from '../../../formats/export';
import { loadPretrained } from '../../../formats/pretrained';
import { smolLm2Gguf } from '../../../infra/models';
import { initBackend } from '../../../model/backend';
import { Llama } from '../../../model/llama';
import { PARITY_TEXT } from './parity-text';

let path: string;
let cpp: LlamaCpp;
let cppModel: LlamaModel;
let base: ReturnType<typeof loadPretrained>;
let tmp: string;

beforeAll(async () => {
  await initBackend('tfjs-node');
  path = await smolLm2Gguf();
  cpp = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
  cppModel = await cpp.loadModel({ modelPath: path });
  base = loadPretrained(path);
  tmp = mkdtempSync(join(tmpdir(), 't1-export-'));
}, 300_000);

afterAll(async () => {
  await cppModel?.dispose();
  await cpp?.dispose();
  rmSync(tmp, { recursive: true, force: true });
});

/** llama.cpp's full next-token distribution after every token of `tokens` (T = 1, no truncation), with its KV cache in `kv`. */
async function llamaCppDistributions(model: LlamaModel, tokens: number[], V: number, kv: 'F16' | 'F32' = 'F32'): Promise<Float32Array[]> {
  // Without flash attention: with it, llama.cpp keeps attention in F16 whatever the cache type.
  const ctx = await model.createContext({
    contextSize: 2048,
    threads: 2,
    flashAttention: false,
    experimentalKvCacheKeyType: kv,
    experimentalKvCacheValueType: kv,
  });
  try {
    const seq = ctx.getSequence();
    const out: Float32Array[] = [];
    const chunk = 64; // each position's distribution arrives as a Map of V entries: keep few alive at once
    for (let i = 0; i < tokens.length; i += chunk) {
      const items = tokens
        .slice(i, i + chunk)
        .map((t) => [t, { generateNext: { probabilities: true, options: { temperature: 1, topK: 0, topP: 1, minP: 0 } } }] as const);
      const results = await seq.controlledEvaluate(items as never);
      for (const r of results) {
        const dist = new Float32Array(V);
        for (const [t, pr] of r!.next.probabilities!) dist[t] = pr;
        out.push(dist);
      }
    }
    return out;
  } finally {
    await ctx.dispose();
  }
}

describe('SmolLM2-135M-Instruct: t1 against llama.cpp', () => {
  it('on the Q4_1 file: agrees on the next token as often as llama.cpp agrees with itself, with a small KL', async () => {
    // llama.cpp multiplies Q4_1 blocks by activations rounded to 8 bits per block of 32, so near-ties
    // flip with any change of arithmetic: its own F16 and F32 KV caches disagree at a few % of positions.
    // That self-agreement is the bar; we dequantize to float32 once and compute in float32.
    expect(base.config).toMatchObject({
      nLayers: 30,
      dModel: 576,
      nHeads: 9,
      nKvHeads: 3,
      dFF: 1536,
      vocabSize: 49152,
      tieEmbeddings: true,
    });
    const V = base.config.vocabSize;
    const tokens = [...cppModel.tokenize(PARITY_TEXT, false)].map(Number);
    expect(tokens.length).toBeGreaterThanOrEqual(512);
    const ref = await llamaCppDistributions(cppModel, tokens, V, 'F32');
    const refF16 = await llamaCppDistributions(cppModel, tokens, V, 'F16');
    const self = compare(ref, logProbs(refF16), V);
    const ours = compare(ref, ourLogProbs(tokens), V);
    console.log(
      `[parity] Q4_1, ${tokens.length} positions: t1 vs llama.cpp top-1 ${pct(ours.top1)}, KL(llama.cpp || t1) mean ${ours.klMean.toExponential(3)} nats (max ${ours.klMax.toExponential(3)}); ` +
        `llama.cpp F16 vs F32 KV cache: top-1 ${pct(self.top1)}, KL mean ${self.klMean.toExponential(3)}`,
    );
    expect(ours.top1).toBeGreaterThanOrEqual(Math.min(0.99, self.top1 - 0.01));
    expect(ours.klMean).toBeLessThan(0.01);
  }, 600_000);

  it('on the same weights in float32 (our F32 GGUF export): llama.cpp gives our next token at >= 99% of positions', async () => {
    const file = join(tmp, 'smollm2-f32.gguf');
    exportGguf({ ...base, name: 'SmolLM2-135M-Instruct' }, file, 'f32');
    const exported = await cpp.loadModel({ modelPath: file });
    try {
      const tokens = [...cppModel.tokenize(PARITY_TEXT, false)].map(Number);
      expect([...exported.tokenize(PARITY_TEXT, false)].map(Number)).toEqual(tokens);
      const V = base.config.vocabSize;
      const ref = await llamaCppDistributions(exported, tokens, V);
      const ours = ourLogProbs(tokens);
      const { top1, klMean, klMax } = compare(ref, ours, V);
      console.log(
        `[parity] F32 export, ${tokens.length} positions: top-1 ${pct(top1)}, KL(llama.cpp || t1) mean ${klMean.toExponential(3)} nats (max ${klMax.toExponential(3)})`,
      );
      expect(top1).toBeGreaterThanOrEqual(0.99);
      expect(compare(ref.slice(0, 256), ours, V).top1).toBe(1);
      expect(klMean).toBeLessThan(1e-3);
      // And our own loader reads the export back to the same weights.
      const again = loadPretrained(file);
      expect(again.config).toEqual(base.config);
      expect(digest(again.weights)).toBe(digest(base.weights));
    } finally {
      await exported.dispose();
    }
  }, 600_000);

  it('exports a Hugging Face directory that t1 reads back to the same weights (sha256)', () => {
    const dir = join(tmp, 'smollm2-hf');
    exportHf({ ...base, name: 'SmolLM2-135M-Instruct' }, dir, 'f32');
    const again = loadPretrained(dir);
    expect(again.config).toEqual(base.config);
    expect(digest(again.weights)).toBe(digest(base.weights));
    expect(again.tokenizer.encode(PARITY_TEXT)).toEqual(base.tokenizer.encode(PARITY_TEXT));
    expect(again.tokenizer.renderChat([{ role: 'user', content: 'Hi' }], { addGenerationPrompt: true })).toBe(
      base.tokenizer.renderChat([{ role: 'user', content: 'Hi' }], { addGenerationPrompt: true }),
    );
  }, 600_000);
});

function pct(x: number): string {
  return `${(100 * x).toFixed(2)} %`;
}

/** Probabilities -> log-probabilities, flattened (for comparing two llama.cpp runs with `compare`). */
function logProbs(dists: Float32Array[]): Float32Array {
  const V = dists[0].length;
  const out = new Float32Array(dists.length * V);
  dists.forEach((d, t) => d.forEach((p, v) => (out[t * V + v] = Math.log(Math.max(p, 1e-30)))));
  return out;
}

/** Our log-probabilities after every token of `tokens`, computed once for both comparisons (a 135M forward pass). */
let ours: { tokens: string; logProbs: Float32Array } | undefined;
function ourLogProbs(tokens: number[]): Float32Array {
  if (ours?.tokens !== tokens.join(',')) ours = { tokens: tokens.join(','), logProbs: forward(tokens) };
  return ours.logProbs;
}

function forward(tokens: number[]): Float32Array {
  const V = base.config.vocabSize;
  const model = new Llama(base.config, base.weights);
  try {
    return tf.tidy(
      () => tf.logSoftmax(model.forward(tf.tensor2d([tokens], undefined, 'int32')).reshape([tokens.length, V])).dataSync() as Float32Array,
    );
  } finally {
    model.dispose();
  }
}

/** Top-1 agreement and KL(p || q) per position between reference probabilities and our log-probabilities. */
function compare(ref: Float32Array[], logits: Float32Array, V: number): { top1: number; klMean: number; klMax: number } {
  let agree = 0;
  let klSum = 0;
  let klMax = 0;
  for (let t = 0; t < ref.length; t++) {
    const p = ref[t];
    const ours = logits.subarray(t * V, (t + 1) * V);
    let argP = 0;
    let argQ = 0;
    let kl = 0;
    for (let v = 0; v < V; v++) {
      if (p[v] > p[argP]) argP = v;
      if (ours[v] > ours[argQ]) argQ = v;
      if (p[v] > 0) kl += p[v] * (Math.log(p[v]) - ours[v]);
    }
    if (argP === argQ) agree++;
    klSum += kl;
    klMax = Math.max(klMax, kl);
  }
  return { top1: agree / ref.length, klMean: klSum / ref.length, klMax };
}

function digest(w: Record<string, Float32Array>): string {
  const h = createHash('sha256');
  for (const name of Object.keys(w).sort()) h.update(name).update(new Uint8Array(w[name].buffer, w[name].byteOffset, w[name].byteLength));
  return h.digest('hex');
}
