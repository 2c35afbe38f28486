/**
 * LlamaConfig <-> the pretrained formats' own descriptions: a GGUF's `<arch>.*` metadata and a
 * Hugging Face `config.json`. Anything the model family cannot represent exactly is refused here,
 * by name, before a weight is read.
 */
import { UserError } from '../util/errors';
import { LlamaConfigSchema, type LlamaConfig } from '../model/llama-config';
import { ggufValue, type GgufEntry, type GgufHeader } from './gguf';
import { ggufArchitecture } from './llama-weights';

export class PretrainedFormatError extends UserError {
  override name = 'PretrainedFormatError';
}

const HF_ARCHITECTURES = ['LlamaForCausalLM', 'MistralForCausalLM', 'Qwen2ForCausalLM'] as const;

export function configFromGguf(h: GgufHeader, file: string): LlamaConfig {
  const fail = (what: string): never => {
    throw new PretrainedFormatError(`${file}: ${what}`);
  };
  const arch = ggufValue(h, 'general.architecture');
  if (arch !== 'llama' && arch !== 'qwen2') fail(`general.architecture "${String(arch)}" is not supported (supported: llama, qwen2)`);
  const num = (key: string, fallback?: number): number => {
    const v = ggufValue(h, `${arch}.${key}`);
    if (v === undefined && fallback !== undefined) return fallback;
    if (typeof v !== 'number' && typeof v !== 'bigint') return fail(`metadata ${arch}.${key} is missing or not a number`);
    return Number(v);
  };
  const names = new Set(h.tensors.map((t) => t.name));
  if (names.has('rope_freqs.weight')) fail('tensor rope_freqs.weight (Llama 3 RoPE scaling in GGUF form) is not supported yet');
  const scaling = ggufValue(h, `${arch}.rope.scaling.type`);
  if (scaling !== undefined && scaling !== 'none') fail(`metadata ${arch}.rope.scaling.type "${String(scaling)}" is not supported`);
  const tokens = ggufValue(h, 'tokenizer.ggml.tokens');
  const dModel = num('embedding_length');
  const nHeads = num('attention.head_count');
  const headDim = num('attention.key_length', dModel / nHeads);
  if (num('rope.dimension_count', headDim) !== headDim) fail(`partial rotary embeddings (${arch}.rope.dimension_count) are not supported`);
  return parseConfig(file, {
    architecture: arch === 'qwen2' ? 'Qwen2ForCausalLM' : 'LlamaForCausalLM',
    vocabSize: num('vocab_size', Array.isArray(tokens) ? tokens.length : undefined),
    dModel,
    nLayers: num('block_count'),
    nHeads,
    nKvHeads: num('attention.head_count_kv', nHeads),
    headDim,
    dFF: num('feed_forward_length'),
    contextLength: num('context_length'),
    ropeTheta: num('rope.freq_base', 10000),
    rmsEps: num('attention.layer_norm_rms_epsilon'),
    tieEmbeddings: !names.has('output.weight'),
    qkvBias: names.has('blk.0.attn_q.bias'),
  });
}

/** The `<arch>.*` and `general.*` metadata that describe the model (the tokenizer's keys are added by the caller). */
export function ggufModelMetadata(c: LlamaConfig, name: string, fileType: number): Record<string, GgufEntry> {
  const { arch } = ggufArchitecture(c);
  if (c.ropeScaling) throw new PretrainedFormatError('GGUF export of Llama 3 RoPE scaling (rope_freqs) is not supported yet');
  const u32 = (value: number): GgufEntry => ({ type: 'u32', value });
  const f32 = (value: number): GgufEntry => ({ type: 'f32', value });
  return {
    'general.architecture': { type: 'string', value: arch },
    'general.name': { type: 'string', value: name },
    'general.file_type': u32(fileType),
    [`${arch}.vocab_size`]: u32(c.vocabSize),
    [`${arch}.context_length`]: u32(c.contextLength),
    [`${arch}.embedding_length`]: u32(c.dModel),
    [`${arch}.block_count`]: u32(c.nLayers),
    [`${arch}.feed_forward_length`]: u32(c.dFF),
    [`${arch}.attention.head_count`]: u32(c.nHeads),
    [`${arch}.attention.head_count_kv`]: u32(c.nKvHeads),
    [`${arch}.attention.key_length`]: u32(c.headDim),
    [`${arch}.attention.value_length`]: u32(c.headDim),
    [`${arch}.rope.dimension_count`]: u32(c.headDim),
    [`${arch}.rope.freq_base`]: f32(c.ropeTheta),
    [`${arch}.attention.layer_norm_rms_epsilon`]: f32(c.rmsEps),
  };
}

export function configFromHf(json: Record<string, unknown>, dir: string): LlamaConfig {
  const fail = (what: string): never => {
    throw new PretrainedFormatError(`${dir}/config.json: ${what}`);
  };
  const archs = json.architectures;
  const architecture = Array.isArray(archs) ? archs[0] : undefined;
  if (!HF_ARCHITECTURES.includes(architecture)) {
    fail(`architecture ${JSON.stringify(architecture)} is not supported (supported: ${HF_ARCHITECTURES.join(', ')})`);
  }
  const num = (key: string, fallback?: number): number => {
    const v = json[key] ?? fallback;
    return typeof v === 'number' ? v : fail(`${key} is missing or not a number`);
  };
  if (json.attention_bias === true) fail('attention_bias (a bias on every attention projection) is not supported');
  if (json.mlp_bias === true) fail('mlp_bias is not supported');
  if (json.hidden_act !== undefined && json.hidden_act !== 'silu') fail(`hidden_act "${String(json.hidden_act)}" is not supported (silu)`);
  // transformers 5 writes `rope_parameters` (theta inside); older configs `rope_theta` and `rope_scaling`.
  const rs = (json.rope_parameters ?? json.rope_scaling) as Record<string, unknown> | null | undefined;
  const ropeType = rs ? (rs.rope_type ?? rs.type ?? 'default') : 'default';
  if (ropeType !== 'llama3' && ropeType !== 'default') fail(`rope type "${String(ropeType)}" is not supported (default, llama3)`);
  const dModel = num('hidden_size');
  const nHeads = num('num_attention_heads');
  // A sliding window is exact full attention up to its length: the model is then used up to there.
  const window = typeof json.sliding_window === 'number' && json.use_sliding_window !== false ? json.sliding_window : Infinity;
  return parseConfig(`${dir}/config.json`, {
    architecture,
    vocabSize: num('vocab_size'),
    dModel,
    nLayers: num('num_hidden_layers'),
    nHeads,
    nKvHeads: num('num_key_value_heads', nHeads),
    headDim: typeof json.head_dim === 'number' ? json.head_dim : dModel / nHeads,
    dFF: num('intermediate_size'),
    contextLength: Math.min(num('max_position_embeddings'), window),
    ropeTheta: typeof rs?.rope_theta === 'number' ? rs.rope_theta : num('rope_theta', 10000),
    ...(ropeType === 'llama3'
      ? {
          ropeScaling: {
            factor: rs!.factor,
            lowFreqFactor: rs!.low_freq_factor,
            highFreqFactor: rs!.high_freq_factor,
            originalContextLength: rs!.original_max_position_embeddings,
          },
        }
      : {}),
    rmsEps: num('rms_norm_eps'),
    tieEmbeddings: json.tie_word_embeddings === true,
    qkvBias: architecture === 'Qwen2ForCausalLM',
  });
}

/** A transformers `config.json` for c (float32 weights unless dtype says otherwise). */
export function hfConfigJson(c: LlamaConfig, ids: { bos?: number; eos: number }, dtype: 'float32' | 'float16' | 'bfloat16'): object {
  const modelType = { LlamaForCausalLM: 'llama', MistralForCausalLM: 'mistral', Qwen2ForCausalLM: 'qwen2' }[c.architecture];
  return {
    architectures: [c.architecture],
    model_type: modelType,
    vocab_size: c.vocabSize,
    hidden_size: c.dModel,
    num_hidden_layers: c.nLayers,
    num_attention_heads: c.nHeads,
    num_key_value_heads: c.nKvHeads,
    head_dim: c.headDim,
    intermediate_size: c.dFF,
    hidden_act: 'silu',
    max_position_embeddings: c.contextLength,
    rope_theta: c.ropeTheta,
    rope_scaling: c.ropeScaling
      ? {
          rope_type: 'llama3',
          factor: c.ropeScaling.factor,
          low_freq_factor: c.ropeScaling.lowFreqFactor,
          high_freq_factor: c.ropeScaling.highFreqFactor,
          original_max_position_embeddings: c.ropeScaling.originalContextLength,
        }
      : null,
    rms_norm_eps: c.rmsEps,
    tie_word_embeddings: c.tieEmbeddings,
    ...(c.architecture === 'MistralForCausalLM' ? { sliding_window: null } : {}),
    ...(c.architecture === 'Qwen2ForCausalLM' ? { use_sliding_window: false } : {}),
    ...(ids.bos !== undefined ? { bos_token_id: ids.bos } : {}),
    eos_token_id: ids.eos,
    torch_dtype: dtype,
  };
}

function parseConfig(where: string, raw: object): LlamaConfig {
  const r = LlamaConfigSchema.safeParse(raw);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  throw new PretrainedFormatError(`${where}: ${issue.path.join('.') || 'config'}: ${issue.message}`);
}
