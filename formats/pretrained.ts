/**
 * A pretrained base on local disk (a GGUF file or a Hugging Face model directory) -> our Llama's
 * config, float32 weights and tokenizer. `openPretrained` reads only headers and checks that
 * every weight is there with the right shape, so a bad base is refused, by name, before anything
 * starts; `loadPretrained` then reads (and dequantizes) the weights.
 */
import { statSync } from 'node:fs';
import type { LlamaConfig } from '../model/llama-config';
import type { NamedArrays } from '../model/transformer';
import { readGgufHeader, readGgufTensor } from './gguf';
import { openHfDirectory, readHfTensor, type HfDirectory } from './hf-dir';
import { configFromGguf, configFromHf, PretrainedFormatError } from './llama-config-io';
import { fromFileLayout, weightSlots } from './llama-weights';
import { tokenizerFromGguf, tokenizerFromHf, type PretrainedTokenizer } from './tokenizer';

export interface OpenedPretrained {
  path: string;
  format: 'gguf' | 'hf';
  config: LlamaConfig;
  /** Its `toGgufMetadata()` gives a GGUF's tokenizer.* metadata back exactly as it came. */
  tokenizer: PretrainedTokenizer;
  /** Reads every weight, in our layout. */
  readWeights(): NamedArrays;
}

export function openPretrained(path: string): OpenedPretrained {
  let dir: boolean;
  try {
    dir = statSync(path).isDirectory();
  } catch {
    throw new PretrainedFormatError(`${path}: no such file or directory`);
  }
  return dir ? openHf(path) : openGguf(path);
}

export function loadPretrained(path: string): OpenedPretrained & { weights: NamedArrays } {
  const opened = openPretrained(path);
  return { ...opened, weights: opened.readWeights() };
}

function openGguf(path: string): OpenedPretrained {
  const h = readGgufHeader(path);
  const config = configFromGguf(h, path);
  const tensors = new Map(h.tensors.map((t) => [t.name, t]));
  const slots = weightSlots(config);
  for (const s of slots) {
    const t = tensors.get(s.gguf);
    if (!t) throw new PretrainedFormatError(`${path}: tensor ${s.gguf} is missing`);
    const want = fileShape(s.shape, s.transpose);
    const got = [...t.dims].reverse();
    if (got.join(',') !== want.join(','))
      throw new PretrainedFormatError(`${path}: tensor ${s.gguf} has shape [${got}], expected [${want}]`);
  }
  return {
    path,
    format: 'gguf',
    config,
    tokenizer: tokenizerFromGguf(h.metadata),
    readWeights: () => Object.fromEntries(slots.map((s) => [s.name, fromFileLayout(s, readGgufTensor(path, tensors.get(s.gguf)!), true)])),
  };
}

function openHf(path: string): OpenedPretrained {
  const d: HfDirectory = openHfDirectory(path);
  const config = configFromHf(d.config, path);
  const slots = weightSlots(config);
  for (const s of slots) {
    const t = d.tensors.get(s.hf);
    if (!t) throw new PretrainedFormatError(`${path}: tensor ${s.hf} is missing`);
    const want = fileShape(s.shape, s.transpose);
    if (t.shape.join(',') !== want.join(','))
      throw new PretrainedFormatError(`${path}: tensor ${s.hf} has shape [${t.shape}], expected [${want}]`);
  }
  return {
    path,
    format: 'hf',
    config,
    tokenizer: tokenizerFromHf(d.tokenizer, d.tokenizerConfig),
    readWeights: () => Object.fromEntries(slots.map((s) => [s.name, fromFileLayout(s, readHfTensor(d.tensors.get(s.hf)!), false)])),
  };
}

function fileShape(shape: number[], transpose: boolean): number[] {
  return transpose ? [shape[1], shape[0]] : shape;
}
