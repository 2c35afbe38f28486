/**
 * Our Llama weights -> files other stacks load: a GGUF file (llama.cpp, ollama) or a Hugging Face
 * model directory (transformers, vLLM): config, safetensors, tokenizer files and chat template.
 */
import type { LlamaConfig } from '../model/llama-config';
import type { NamedArrays } from '../model/transformer';
import { writeGguf } from './gguf';
import { writeHfDirectory } from './hf-dir';
import { ggufModelMetadata, hfConfigJson, PretrainedFormatError } from './llama-config-io';
import { toFileLayout, weightSlots } from './llama-weights';
import type { PretrainedTokenizer } from './tokenizer';

export const EXPORT_DTYPES = ['f32', 'f16', 'bf16'] as const;
export type ExportDtype = (typeof EXPORT_DTYPES)[number];

export interface ExportableModel {
  config: LlamaConfig;
  weights: NamedArrays;
  /** A GGUF base's tokenizer gives its tokenizer.* metadata back unchanged; one from tokenizer.json is converted. */
  tokenizer: PretrainedTokenizer;
  name: string;
}

/** llama.cpp's general.file_type for a file whose matrices are all of one type. */
const FILE_TYPE: Record<ExportDtype, number> = { f32: 0, f16: 1, bf16: 32 };

export function exportGguf(m: ExportableModel, path: string, dtype: ExportDtype): void {
  const metadata = { ...ggufModelMetadata(m.config, m.name, FILE_TYPE[dtype]), ...m.tokenizer.toGgufMetadata() };
  const type = dtype.toUpperCase() as 'F32' | 'F16' | 'BF16';
  const tensors = weightSlots(m.config).map((s) => {
    const { data, shape } = toFileLayout(s, weights(m, s.name), true);
    // Norm gains stay F32, as llama.cpp's converter keeps 1-D tensors.
    return { name: s.gguf, dims: [...shape].reverse(), type: shape.length === 1 ? ('F32' as const) : type, data };
  });
  writeGguf(path, metadata, tensors);
}

export function exportHf(m: ExportableModel, dir: string, dtype: ExportDtype): void {
  const torchDtype = { f32: 'float32', f16: 'float16', bf16: 'bfloat16' } as const;
  const { tokenizer, tokenizerConfig } = m.tokenizer.toHfFiles();
  writeHfDirectory(dir, {
    config: hfConfigJson(m.config, { bos: m.tokenizer.bosId, eos: m.tokenizer.eosId }, torchDtype[dtype]),
    tokenizer,
    tokenizerConfig,
    generationConfig: {
      ...(m.tokenizer.bosId !== undefined ? { bos_token_id: m.tokenizer.bosId } : {}),
      eos_token_id: m.tokenizer.eosId,
    },
    tensors: weightSlots(m.config).map((s) => ({ name: s.hf, ...toFileLayout(s, weights(m, s.name), false) })),
    dtype: dtype.toUpperCase() as 'F32' | 'F16' | 'BF16',
  });
}

function weights(m: ExportableModel, name: string): Float32Array {
  const w = m.weights[name];
  if (!w) throw new PretrainedFormatError(`export: weight "${name}" is missing`);
  return w;
}
