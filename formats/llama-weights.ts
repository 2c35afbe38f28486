/**
 * Where each of our Llama weights lives in the pretrained formats, and how its layout differs:
 *  - Hugging Face (safetensors) and GGUF store projections [out, in]; we store [in, out] (x @ W);
 *  - llama.cpp's converter permutes the q and k rows of `llama` GGUFs so that RoPE rotates adjacent
 *    pairs (its "normal" mode); transformers and we rotate the first half of a head against the
 *    second (rotate_half). `qwen2` GGUFs keep transformers' order (llama.cpp's NEOX mode).
 * One table serves loading and export in both formats, so the two directions cannot drift apart.
 */
import type { LlamaConfig } from '../model/llama-config';
import { llamaParamShapes } from '../model/shapes';

export interface WeightSlot {
  /** Our name (model/llama.ts) and shape. */
  name: string;
  shape: number[];
  hf: string;
  gguf: string;
  /** Stored [out, in] in the files: transposed on the way in and out. */
  transpose: boolean;
  /** Rows grouped per head that a `llama` GGUF permutes (q and k): the head count. */
  permuteHeads?: number;
}

/** The GGUF architecture name our config is written as, and whether its q/k rows are permuted. */
export function ggufArchitecture(c: LlamaConfig): { arch: 'llama' | 'qwen2'; permuted: boolean } {
  return c.architecture === 'Qwen2ForCausalLM' ? { arch: 'qwen2', permuted: false } : { arch: 'llama', permuted: true };
}

export function weightSlots(c: LlamaConfig): WeightSlot[] {
  const permuted = ggufArchitecture(c).permuted;
  return llamaParamShapes(c).map(([name, shape]) => {
    const slot = (hf: string, gguf: string, transpose: boolean, heads?: number): WeightSlot => ({
      name,
      shape,
      hf,
      gguf,
      transpose,
      ...(heads && permuted ? { permuteHeads: heads } : {}),
    });
    if (name === 'wte') return slot('model.embed_tokens.weight', 'token_embd.weight', false);
    if (name === 'lnf.g') return slot('model.norm.weight', 'output_norm.weight', false);
    if (name === 'head') return slot('lm_head.weight', 'output.weight', true);
    const [, l, rest] = /^h(\d+)\.(.+)$/.exec(name)!;
    const hf = (s: string) => `model.layers.${l}.${s}`;
    const gguf = (s: string) => `blk.${l}.${s}`;
    switch (rest) {
      case 'ln1.g':
        return slot(hf('input_layernorm.weight'), gguf('attn_norm.weight'), false);
      case 'ln2.g':
        return slot(hf('post_attention_layernorm.weight'), gguf('ffn_norm.weight'), false);
      case 'attn.wq':
        return slot(hf('self_attn.q_proj.weight'), gguf('attn_q.weight'), true, c.nHeads);
      case 'attn.wk':
        return slot(hf('self_attn.k_proj.weight'), gguf('attn_k.weight'), true, c.nKvHeads);
      case 'attn.wv':
        return slot(hf('self_attn.v_proj.weight'), gguf('attn_v.weight'), true);
      case 'attn.bq':
        return slot(hf('self_attn.q_proj.bias'), gguf('attn_q.bias'), false, c.nHeads);
      case 'attn.bk':
        return slot(hf('self_attn.k_proj.bias'), gguf('attn_k.bias'), false, c.nKvHeads);
      case 'attn.bv':
        return slot(hf('self_attn.v_proj.bias'), gguf('attn_v.bias'), false);
      case 'attn.wo':
        return slot(hf('self_attn.o_proj.weight'), gguf('attn_output.weight'), true);
      case 'mlp.wg':
        return slot(hf('mlp.gate_proj.weight'), gguf('ffn_gate.weight'), true);
      case 'mlp.wu':
        return slot(hf('mlp.up_proj.weight'), gguf('ffn_up.weight'), true);
      case 'mlp.wd':
        return slot(hf('mlp.down_proj.weight'), gguf('ffn_down.weight'), true);
    }
    throw new Error(`no pretrained name for weight "${name}"`);
  });
}

/** Row-major [rows, cols] -> [cols, rows]. */
export function transpose2d(a: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(a.length);
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    for (let c = 0; c < cols; c++) out[c * rows + r] = a[base + c];
  }
  return out;
}

/**
 * llama.cpp's q/k row order <-> transformers': within each head of K rows, llama.cpp's row 2i + j
 * is transformers' row j*K/2 + i (j in {0, 1}, i < K/2). `toGguf` false undoes the permutation.
 * `a` is [heads*K, cols] row-major (cols = 1 for a bias).
 */
export function permuteRows(a: Float32Array, heads: number, cols: number, toGguf: boolean): Float32Array {
  const K = a.length / cols / heads;
  const out = new Float32Array(a.length);
  for (let h = 0; h < heads; h++)
    for (let i = 0; i < K / 2; i++)
      for (let j = 0; j < 2; j++) {
        const hfRow = h * K + j * (K / 2) + i;
        const ggufRow = h * K + 2 * i + j;
        const [from, to] = toGguf ? [hfRow, ggufRow] : [ggufRow, hfRow];
        out.set(a.subarray(from * cols, (from + 1) * cols), to * cols);
      }
  return out;
}

/** A file's [out, in] (or vector) values -> ours, given where they came from. */
export function fromFileLayout(slot: WeightSlot, values: Float32Array, gguf: boolean): Float32Array {
  const [rows, cols] = slot.transpose ? [slot.shape[1], slot.shape[0]] : [slot.shape[0], slot.shape[1] ?? 1];
  const unpermuted = gguf && slot.permuteHeads ? permuteRows(values, slot.permuteHeads, cols, false) : values;
  return slot.transpose ? transpose2d(unpermuted, rows, cols) : unpermuted;
}

/** Ours -> the file's layout and row-major shape. */
export function toFileLayout(slot: WeightSlot, values: Float32Array, gguf: boolean): { data: Float32Array; shape: number[] } {
  const shape = slot.transpose ? [slot.shape[1], slot.shape[0]] : slot.shape;
  const data = slot.transpose ? transpose2d(values, slot.shape[0], slot.shape[1]) : values;
  return { data: gguf && slot.permuteHeads ? permuteRows(data, slot.permuteHeads, shape[1] ?? 1, true) : data, shape };
}
