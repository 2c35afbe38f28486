/**
 * `npm run bench -- --profile`: where one SFT step and one decode step of the reference model
 * (4 layers, d 256, context 256, batch 16) spend their time, by op kind. Kernel times come from
 * tf.profile; `host` is the step's wall time outside kernels (JS, tensor creation, the download of
 * logits and losses, per-op binding overhead, customGrad's bookkeeping). Layer norm (training's
 * and the decoder's) and the optimizer are attributed by wrapping their calls; the backward
 * kernels of layer norm and GELU fall under `elementwise`.
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../model/backend';
import { Decoder } from '../model/decode';
import { generate } from '../model/sample';
import { BOS, buildExample } from '../model/tokenizer';
import type { Transformer } from '../model/transformer';
import { AdamW } from '../training/adamw';
import { SftTrainer } from '../training/sft';
import { Prng } from '../util/prng';
import type { Metric } from './metric';
import { BATCH, nonStopping, REF } from './model';

type Kind = 'matMul' | 'attention softmax/transposes' | 'layer norm' | 'optimizer' | 'kv cache concat/gather' | 'elementwise' | 'host';
type Breakdown = Record<Kind, number>;

const KIND_OF: Record<string, Kind> = {
  BatchMatMul: 'matMul',
  _FusedMatMul: 'matMul',
  Softmax: 'attention softmax/transposes',
  Transpose: 'attention softmax/transposes',
  SplitV: 'attention softmax/transposes',
  Concat: 'kv cache concat/gather',
  GatherV2: 'kv cache concat/gather',
};

const kernels = () => (tf.engine().state as unknown as { activeProfile: { kernels: unknown[] } }).activeProfile.kernels;

/**
 * Profiles `f`, attributing kernels run inside the layer norms of `model` and inside AdamW steps
 * to their own kinds. Returns milliseconds by kind and the wall time.
 */
export async function profiled(model: Transformer, f: () => Promise<unknown>): Promise<{ ms: Breakdown; wallMs: number }> {
  const ranges: { from: number; to: number; kind: Kind }[] = [];
  const mark =
    <A extends unknown[], R>(kind: Kind, fn: (...a: A) => R) =>
    (...a: A): R => {
      const from = kernels().length;
      const r = fn(...a);
      ranges.push({ from, to: kernels().length, kind });
      return r;
    };
  const m = model as unknown as { layerNorm: (...a: unknown[]) => unknown };
  const layerNorm = m.layerNorm;
  const d = Decoder.prototype as unknown as { normalized: (...a: unknown[]) => unknown };
  const normalized = d.normalized;
  const step = AdamW.prototype.step;
  m.layerNorm = mark('layer norm', layerNorm);
  d.normalized = function (this: Decoder, ...a: unknown[]) {
    return mark('layer norm', normalized.bind(this))(...a);
  };
  AdamW.prototype.step = function (this: AdamW, ...a: Parameters<AdamW['step']>) {
    return mark('optimizer', step.bind(this))(...a);
  };
  // The profiler would otherwise download every kernel's output to check it for NaN.
  const check = tf.env().getBool('CHECK_COMPUTATION_FOR_ERRORS');
  tf.env().set('CHECK_COMPUTATION_FOR_ERRORS', false);
  try {
    const t0 = performance.now();
    const info = await tf.profile(async () => void (await f()));
    const wallMs = performance.now() - t0;
    const ms = {
      matMul: 0,
      'attention softmax/transposes': 0,
      'layer norm': 0,
      optimizer: 0,
      'kv cache concat/gather': 0,
      elementwise: 0,
      host: 0,
    };
    info.kernels.forEach((k, i) => {
      // A customGrad op is recorded as a scope around its own kernels: count those only.
      if (k.name === 'unnamed scope') return;
      const kind = ranges.find((r) => i >= r.from && i < r.to)?.kind ?? KIND_OF[k.name] ?? 'elementwise';
      ms[kind] += typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
    });
    ms.host = Math.max(0, wallMs - Object.values(ms).reduce((a, b) => a + b, 0));
    return { ms, wallMs };
  } finally {
    m.layerNorm = layerNorm;
    d.normalized = normalized;
    AdamW.prototype.step = step;
    tf.env().set('CHECK_COMPUTATION_FOR_ERRORS', check);
  }
}

function emitBreakdown(emit: (m: Metric) => void, phase: string, ms: Breakdown, wallMs: number, context: Record<string, unknown>) {
  for (const [kind, value] of Object.entries(ms))
    emit({ metric: `profile_${phase}_ms`, value, unit: 'ms', kind, share: value / wallMs, step_ms: wallMs, ...context });
}

export async function runProfile(emit: (m: Metric) => void): Promise<void> {
  const { name: backend } = await initBackend();
  const rng = new Prng(1);
  const context = { backend, model: 'L4 D256 T256', batch: BATCH };

  // One SFT step on full-context sequences (after a warm-up step).
  const text = (n: number) => Array.from({ length: n }, () => String.fromCharCode(32 + rng.int(95))).join('');
  const examples = Array.from({ length: 2 * BATCH }, () =>
    buildExample({ prompt: text(60), reasoning: text(150), answer: text(10), verification: text(32) }),
  );
  const trainer = SftTrainer.create(REF, { batchSize: BATCH, microBatchSize: BATCH }, examples, 1);
  trainer.trainStep();
  const sft = await profiled(trainer.model, async () => void trainer.trainStep());
  emitBreakdown(emit, 'sft_step', sft.ms, sft.wallMs, context);
  trainer.dispose();

  // One decode step at batch 16: 33 generated tokens minus 1 (prefill and the first token), over 32.
  const model = nonStopping(2);
  const prompts = Array.from({ length: BATCH }, () => [BOS, ...Array.from({ length: 63 }, () => 6 + rng.int(95))]);
  const run = (n: number) => () => generate(model, prompts, { maxNewTokens: n, temperature: 1 }, new Prng(3));
  await run(33)();
  const long = await profiled(model, run(33));
  const short = await profiled(model, run(1));
  const per = (a: number, b: number) => Math.max(0, a - b) / 32;
  const ms = Object.fromEntries(Object.keys(long.ms).map((k) => [k, per(long.ms[k as Kind], short.ms[k as Kind])])) as Breakdown;
  emitBreakdown(emit, 'decode_step', ms, per(long.wallMs, short.wallMs), { ...context, context_tokens: '64-96' });
  model.dispose();
}
