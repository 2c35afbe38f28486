/**
 * SmolLM2-135M-Instruct (the Q4_1 GGUF, dequantized to float32) next to llama.cpp on the same file
 * and machine: greedy sampling tokens/s at batch 1 and 16 (llama.cpp: 16 sequences of one context,
 * which it batches), each with the ratio ours / llama.cpp; and full fine-tuning tokens/s (forward,
 * backward, AdamW) at 4 x 128 tokens. One warm-up, then one timed run: numbers for trends.
 */
import * as tf from '@tensorflow/tfjs';
import { getLlama, LlamaLogLevel, type LlamaModel, type Token } from 'node-llama-cpp';
import { loadPretrained } from '../formats/pretrained';
import { smolLm2Gguf } from '../infra/models';
import { initBackend } from '../model/backend';
import { Llama } from '../model/llama';
import { llamaDecodable } from '../model/llama-decode';
import { initLoraWeights } from '../model/lora';
import { LoraConfigSchema } from '../model/lora-config';
import { generate } from '../model/sample';
import { maskedNllSum } from '../training/loss';
import { AdamW } from '../training/adamw';
import { Prng } from '../util/prng';
import type { Bench } from './metric';

const NEW_TOKENS = 64;
const SFT = { batch: 4, length: 128, steps: 2 };

/** Seconds of one call of f after one warm-up call. */
async function timed(f: () => Promise<unknown>): Promise<number> {
  await f();
  const t0 = performance.now();
  await f();
  return (performance.now() - t0) / 1000;
}

/** llama.cpp's greedy tokens/s for `rows` copies of the prompt, NEW_TOKENS each, one sequence per row. */
async function llamaCppTokensPerS(model: LlamaModel, prompt: number[], rows: number): Promise<number> {
  const ctx = await model.createContext({ contextSize: rows * (prompt.length + NEW_TOKENS + 8), sequences: rows, threads: 2 });
  try {
    const run = () =>
      Promise.all(
        Array.from({ length: rows }, async (_, i) => {
          const seq = ctx.getSequence();
          try {
            let n = 0;
            for await (const _t of seq.evaluate(prompt as Token[], { temperature: 0 })) if (++n >= NEW_TOKENS) break;
          } finally {
            await seq.dispose();
          }
          return i;
        }),
      );
    return (rows * NEW_TOKENS) / (await timed(run));
  } finally {
    await ctx.dispose();
  }
}

export const pretrainedBench: Bench = {
  metrics: [
    'pretrained_sample_tokens_per_s_b1',
    'pretrained_sample_tokens_per_s_b16',
    'llamacpp_sample_tokens_per_s_b1',
    'llamacpp_sample_tokens_per_s_b16',
    'pretrained_sample_ratio_b1',
    'pretrained_sample_ratio_b16',
    'pretrained_sft_tokens_per_s',
    'pretrained_lora_sft_tokens_per_s',
  ],
  async run(emit) {
    const backend = await initBackend();
    const path = await smolLm2Gguf();
    const base = loadPretrained(path);
    const model = new Llama(base.config, base.weights);
    const prompt = base.tokenizer.encode(
      base.tokenizer.renderChat([{ role: 'user', content: 'Write a short story about a lighthouse keeper.' }], {
        addGenerationPrompt: true,
      }),
    );
    // Greedy with the end token unreachable, so every row generates NEW_TOKENS.
    const decodable = { ...llamaDecodable(model, base.tokenizer.eosId), eos: -1 };
    const ours = async (rows: number) =>
      (rows * NEW_TOKENS) /
      (await timed(() =>
        generate(
          decodable,
          Array.from({ length: rows }, () => prompt),
          { maxNewTokens: NEW_TOKENS, greedy: true },
          new Prng(0),
        ),
      ));

    const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
    const cppModel = await llama.loadModel({ modelPath: path });
    const context = {
      model: 'SmolLM2-135M-Instruct.Q4_1.gguf',
      backend: backend.name,
      prompt_tokens: prompt.length,
      new_tokens: NEW_TOKENS,
    };
    try {
      for (const rows of [1, 16]) {
        const t1 = await ours(rows);
        const cpp = await llamaCppTokensPerS(cppModel, prompt, rows);
        emit({ metric: `pretrained_sample_tokens_per_s_b${rows}`, value: t1, unit: 'tokens/s', batch: rows, ...context });
        emit({ metric: `llamacpp_sample_tokens_per_s_b${rows}`, value: cpp, unit: 'tokens/s', batch: rows, ...context, threads: 2 });
        emit({
          metric: `pretrained_sample_ratio_b${rows}`,
          value: t1 / cpp,
          unit: 'ratio',
          batch: rows,
          note: 't1 / llama.cpp, same file and machine',
        });
      }
    } finally {
      await cppModel.dispose();
      await llama.dispose();
    }

    // Fine-tuning, every weight and LoRA (PEFT's default r 8 on q and v): next-token loss on random tokens (the cost does not depend on the data).
    const rng = new Prng(1);
    const { batch: B, length: T } = SFT;
    const rows = Array.from({ length: B }, () => Array.from({ length: T + 1 }, () => rng.int(base.config.vocabSize)));
    const inputs = tf.tensor2d(
      rows.map((r) => r.slice(0, T)),
      undefined,
      'int32',
    );
    const targets = tf.tensor2d(
      rows.map((r) => r.slice(1)),
      undefined,
      'int32',
    );
    const mask = tf.onesLike(targets).cast('float32') as tf.Tensor2D;
    const lora = LoraConfigSchema.parse({});
    const adapted = new Llama(base.config, base.weights, { config: lora, weights: initLoraWeights(base.config, lora, new Prng(2)) });
    for (const [metric, m] of [
      ['pretrained_sft_tokens_per_s', model],
      ['pretrained_lora_sft_tokens_per_s', adapted],
    ] as const) {
      const opt = new AdamW(m.variables, m.names, { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0 });
      const step = async () => {
        const { grads } = tf.variableGrads(() => maskedNllSum(m.forward(inputs), targets, mask).div(B * T) as tf.Scalar, m.variables);
        opt.step(
          m.variables.map((v) => grads[v.name]),
          1e-5,
        );
        tf.dispose(grads);
      };
      const seconds = await timed(async () => {
        for (let i = 0; i < SFT.steps; i++) await step();
      });
      emit({
        metric,
        value: (SFT.steps * B * T) / seconds,
        unit: 'tokens/s',
        batch: B,
        sequence: T,
        full_finetune: m === model,
        trained_params: m.paramCount(),
        backend: backend.name,
      });
      opt.dispose();
    }
    tf.dispose([inputs, targets, mask]);
    adapted.dispose();
    model.dispose();
  },
};
