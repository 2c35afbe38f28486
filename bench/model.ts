/**
 * Model throughput on the reference model (4 layers, d_model 256, context 256, batch 16):
 * SFT tokens/s and MFU, sampling tokens/s at batch 16 and 256 (also as 2 sampler processes),
 * scoring tokens/s, KV-cache speedup over full recompute (batch 1 and 16), SFT peak RSS.
 * One warm-up then one timed run per metric (SFT: 3 and 4 steps): numbers for trends, not for decimals.
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../model/backend';
import { modelConfig } from '../model/config';
import { generate } from '../model/sample';
import { BOS, EOS, buildExample } from '../model/tokenizer';
import { Transformer } from '../model/transformer';
import { rolloutShards } from '../rl/config';
import { responseLogProbs } from '../rl/loss';
import type { RolloutBatch } from '../rl/rollout';
import { SamplerPool } from '../rl/sampler-pool';
import { SftTrainer } from '../training/sft';
import { Prng } from '../util/prng';
import type { Bench } from './metric';

export const REF = modelConfig({ nLayers: 4, dModel: 256, nHeads: 4, dFF: 1024, contextLength: 256 });
export const BATCH = 16;

/** Mean seconds per call of f over `runs` calls, after `warmups` calls. */
async function timed(f: () => unknown | Promise<unknown>, warmups = 1, runs = 1): Promise<number> {
  for (let i = 0; i < warmups; i++) await f();
  const t0 = performance.now();
  for (let i = 0; i < runs; i++) await f();
  return (performance.now() - t0) / 1000 / runs;
}

function matmulFlops(rng: Prng): Promise<number> {
  const rand = () =>
    tf.tensor2d(
      Float32Array.from({ length: 1024 * 1024 }, () => rng.next()),
      [1024, 1024],
    );
  const a = rand();
  const b = rand();
  return timed(() => tf.tidy(() => void tf.matMul(a, b).dataSync())).then((s) => {
    tf.dispose([a, b]);
    return (2 * 1024 ** 3) / s;
  });
}

/** Training FLOPs per step: 6 * (matMul parameters) per token, plus 12 * L * D * T per token for attention scores. */
function sftFlops(model: Transformer, tokens: number, T: number): number {
  const { nLayers, dModel, contextLength } = model.config;
  const matmulParams = model.paramCount() - contextLength * dModel; // position embeddings are an add
  return tokens * (6 * matmulParams + 12 * nLayers * dModel * T);
}

/** A model whose EOS logit is 0 (zero embedding row, tied head): greedy decoding never picks it, so runs have a fixed length. */
export function nonStopping(seed: number): Transformer {
  const model = new Transformer(REF, new Prng(seed));
  tf.tidy(() => {
    const wte = model.variables[0];
    const keep = tf.oneHot([EOS], REF.vocabSize).cast('float32').reshape([REF.vocabSize, 1]).sub(1).neg();
    wte.assign(wte.mul(keep));
  });
  return model;
}

/** Seconds to decode 256 greedy tokens after BOS for `batch` rows with the KV cache, and by recomputing the whole prefix each token. */
async function kvSpeedup(model: Transformer, batch: number): Promise<{ cachedS: number; recomputeS: number }> {
  const starts = Array.from({ length: batch }, () => [BOS]);
  const cachedS = await timed(() => generate(model, starts, { maxNewTokens: 256, greedy: true }, new Prng(0)));
  const recomputeS = await timed(() => {
    const seqs = starts.map((s) => [...s]);
    while (seqs[0].length <= REF.contextLength) {
      const next = tf.tidy(() =>
        model
          .forward(tf.tensor2d(seqs, undefined, 'int32'))
          .slice([0, seqs[0].length - 1, 0], [batch, 1, -1])
          .argMax(-1)
          .dataSync(),
      );
      seqs.forEach((s, i) => s.push(next[i]));
    }
  }, 0); // the cached run above already warmed up every kernel
  return { cachedS, recomputeS };
}

export const modelBench: Bench = {
  metrics: [
    'sft_tokens_per_s',
    'sft_mfu',
    'sft_peak_rss_mb',
    'sample_tokens_per_s',
    'sample_tokens_per_s_b256',
    'sample_tokens_per_s_b256_processes2',
    'score_tokens_per_s',
    'kv_cache_speedup',
    'kv_cache_speedup_b16',
  ],
  async run(emit) {
    const { name: backend } = await initBackend();
    const ctx = (params: number) => ({ backend, params, model: 'L4 D256 T256', batch: BATCH });
    const rng = new Prng(1);
    const peakFlops = await matmulFlops(rng);

    // SFT: full-context sequences, one update per step (no accumulation).
    const text = (n: number) => Array.from({ length: n }, () => String.fromCharCode(32 + rng.int(95))).join('');
    const examples = Array.from({ length: 4 * BATCH }, () =>
      buildExample({ prompt: text(60), reasoning: text(150), answer: text(10), verification: text(32) }),
    );
    const trainer = SftTrainer.create(REF, { batchSize: BATCH, microBatchSize: BATCH }, examples, 1);
    let positions = 0;
    // The first steps grow TensorFlow's heap: their page faults cost 0.3-2 s of system time a step on
    // 2 vCPUs, which a campaign's later steps do not pay. Measure those: 3 warm-up steps, 4 timed.
    const stepS = await timed(() => (positions = trainer.trainStep().positions), 3, 4);
    const params = trainer.model.paramCount();
    emit({ metric: 'sft_tokens_per_s', value: positions / stepS, unit: 'tokens/s', ...ctx(params), steps_per_s: 1 / stepS });
    emit({
      metric: 'sft_mfu',
      value: sftFlops(trainer.model, positions, positions / BATCH) / stepS / peakFlops,
      unit: 'fraction',
      ...ctx(params),
      matmul_gflops: peakFlops / 1e9,
    });
    emit({ metric: 'sft_peak_rss_mb', value: process.resourceUsage().maxRSS / 1024, unit: 'MB', ...ctx(params) });
    trainer.dispose();

    // Sampling: batch 16, 16-token prompts, 240 new tokens each (fills the context).
    const model = nonStopping(2);
    const prompts = Array.from({ length: BATCH }, () => [BOS, ...Array.from({ length: 15 }, () => 6 + rng.int(95))]);
    let generated = 0;
    const sampleS = await timed(async () => {
      const out = await generate(model, prompts, { maxNewTokens: 240, greedy: true }, new Prng(3));
      generated = out.reduce((n, s) => n + s.tokens.length, 0);
    });
    emit({ metric: 'sample_tokens_per_s', value: generated / sampleS, unit: 'tokens/s', ...ctx(params), new_tokens: generated });

    // RL-sized sampling: 256 sequences in flight, 64 new tokens each (one timed run, no warm-up: it is long).
    const wide = Array.from({ length: 256 }, () => [BOS, ...Array.from({ length: 15 }, () => 6 + rng.int(95))]);
    let wideTokens = 0;
    const wideS = await timed(async () => {
      const out = await generate(model, wide, { maxNewTokens: 64, temperature: 1 }, new Prng(4));
      wideTokens = out.reduce((n, s) => n + s.tokens.length, 0);
    }, 0);
    emit({
      metric: 'sample_tokens_per_s_b256',
      value: wideTokens / wideS,
      unit: 'tokens/s',
      ...ctx(params),
      batch: 256,
      new_tokens: wideTokens,
    });

    // The same 256 sequences as 2 sampler calls of 128 in 2 sampler processes of one TensorFlow thread (rl.rollout.processes 2).
    const pool = new SamplerPool(2, backend);
    try {
      const batch: RolloutBatch = {
        prompts: wide,
        first: 0,
        samplesPerPrompt: 1,
        stepSeed: 4,
        sampleBatch: 128,
        sampling: { maxNewTokens: 64, temperature: 1, topP: 1, minP: 0 },
      };
      const shards = rolloutShards({ promptsPerStep: wide.length, ...batch, rollout: {} });
      let pooledTokens = 0;
      // The warm-up call also starts the processes; a process's first call at a shape is 1.7-1.9x slower.
      const pooledS = await timed(async () => {
        const out = await pool.sample(model, batch, shards);
        pooledTokens = out.reduce((n, s) => n + s.tokens.length, 0);
      });
      emit({
        metric: 'sample_tokens_per_s_b256_processes2',
        value: pooledTokens / pooledS,
        unit: 'tokens/s',
        ...ctx(params),
        batch: 256,
        processes: 2,
        new_tokens: pooledTokens,
      });
    } finally {
      pool.close();
    }

    // Scoring (the anchor's side of the KL): log-probs of 256 sampled sequences of 80 tokens, micro-batch 64.
    const seqs = wide.map((p) => ({ tokens: [...p, ...Array.from({ length: 64 }, () => 6 + rng.int(95))], promptLength: p.length }));
    const scoreS = await timed(() => responseLogProbs(model, seqs, 64, 1));
    emit({
      metric: 'score_tokens_per_s',
      value: (256 * 64) / scoreS,
      unit: 'response tokens/s',
      ...ctx(params),
      batch: 256,
      micro_batch: 64,
    });

    // KV cache vs recomputing the whole prefix for every new token: greedy, 256 new tokens, batch 1 and batch 16.
    for (const [metric, batch] of [
      ['kv_cache_speedup', 1],
      ['kv_cache_speedup_b16', BATCH],
    ] as const) {
      const { cachedS, recomputeS } = await kvSpeedup(model, batch);
      emit({
        metric,
        value: recomputeS / cachedS,
        unit: 'x',
        ...ctx(params),
        batch,
        new_tokens: 256,
        cached_s: cachedS,
        recompute_s: recomputeS,
      });
    }
    model.dispose();
  },
};
