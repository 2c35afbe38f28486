import { UserError } from '../util/errors';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  readSafetensorsHeader,
  readSafetensorsTensor,
  writeSafetensors,
  type SafetensorsFloatDtype,
  type SafetensorsTensor,
} from './safetensors';

/**
 * A Hugging Face model directory as `save_pretrained` writes it: config.json, tokenizer.json (+ optional
 * tokenizer_config.json, generation_config.json) and weights in model.safetensors, or in shards listed by
 * model.safetensors.index.json. Opening reads only JSON and safetensors headers; tensors load on demand.
 */

export class HfDirError extends UserError {
  override name = 'HfDirError';
}

export interface HfTensorRef {
  name: string;
  shape: number[];
  dtype: string;
  /** Path of the safetensors file holding the tensor. */
  file: string;
  tensor: SafetensorsTensor;
}

export interface HfDirectory {
  dir: string;
  config: Record<string, unknown>;
  tokenizer: Record<string, unknown>;
  /**
   * tokenizer_config.json ({} when absent). transformers 5 saves the chat template in chat_template.jinja
   * instead; its text is then put here as `chat_template`, where older checkpoints keep it.
   */
  tokenizerConfig: Record<string, unknown>;
  generationConfig?: Record<string, unknown>;
  /** Every tensor of every shard, by its Hugging Face name. */
  tensors: Map<string, HfTensorRef>;
}

const INDEX = 'model.safetensors.index.json';
const NEEDS = 'a Hugging Face model directory needs config.json, tokenizer.json and *.safetensors';
const DTYPE_BYTES: Record<SafetensorsFloatDtype, number> = { F32: 4, F16: 2, BF16: 2 };

export function openHfDirectory(dir: string): HfDirectory {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new HfDirError(`${dir}: not a directory (${NEEDS})`);
  const config = requireJson(dir, 'config.json');
  const tokenizer = requireJson(dir, 'tokenizer.json');
  const tokenizerConfig = readJson(dir, 'tokenizer_config.json') ?? {};
  const jinja = join(dir, 'chat_template.jinja');
  if (tokenizerConfig.chat_template === undefined && existsSync(jinja)) tokenizerConfig.chat_template = readFileSync(jinja, 'utf8');
  const generationConfig = readJson(dir, 'generation_config.json');

  const index = readIndex(dir);
  const tensors = new Map<string, HfTensorRef>();
  for (const shard of weightFiles(dir, index)) {
    const file = join(dir, shard);
    for (const tensor of readSafetensorsHeader(file).tensors) {
      const other = tensors.get(tensor.name);
      if (other) throw new HfDirError(`${dir}: tensor ${tensor.name} is in both ${other.file} and ${file}`);
      tensors.set(tensor.name, { name: tensor.name, shape: tensor.shape, dtype: tensor.dtype, file, tensor });
    }
  }
  if (index) checkIndexAgrees(dir, index, tensors);
  return { dir, config, tokenizer, tokenizerConfig, generationConfig, tensors };
}

export function readHfTensor(ref: HfTensorRef): Float32Array {
  return readSafetensorsTensor(ref.file, ref.tensor);
}

function requireJson(dir: string, name: string): Record<string, unknown> {
  const json = readJson(dir, name);
  if (!json) throw new HfDirError(`${dir}: ${name} is missing (${NEEDS})`);
  return json;
}

/** A JSON object file of the directory; undefined when absent. */
function readJson(dir: string, name: string): Record<string, unknown> | undefined {
  const path = join(dir, name);
  if (!existsSync(path)) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new HfDirError(`${path}: not valid JSON (${(e as Error).message})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new HfDirError(`${path}: not a JSON object`);
  return json as Record<string, unknown>;
}

/** The shards the index names (each must exist), or else every *.safetensors in the directory. */
function weightFiles(dir: string, index: Record<string, string> | undefined): string[] {
  if (index) {
    const shards = [...new Set(Object.values(index))].sort();
    for (const shard of shards) {
      if (!existsSync(join(dir, shard))) throw new HfDirError(`${dir}: shard ${shard} named in ${INDEX} is missing`);
    }
    return shards;
  }
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.safetensors'))
    .sort();
  if (files.length === 0) throw new HfDirError(`${dir}: no weights (no model.safetensors, ${INDEX} or other *.safetensors)`);
  return files;
}

/** weight_map of the index, validated as { tensor name: shard file name }; undefined without an index. */
function readIndex(dir: string): Record<string, string> | undefined {
  const index = readJson(dir, INDEX);
  if (!index) return undefined;
  const map = index.weight_map;
  if (typeof map !== 'object' || map === null || Array.isArray(map)) throw new HfDirError(`${dir}/${INDEX}: weight_map is not an object`);
  for (const [name, shard] of Object.entries(map)) {
    if (typeof shard !== 'string' || shard.includes('/') || shard.includes('\\')) {
      throw new HfDirError(`${dir}/${INDEX}: weight_map entry ${name} is not a file name in the directory`);
    }
  }
  if (Object.keys(map).length === 0) throw new HfDirError(`${dir}/${INDEX}: weight_map is empty`);
  return map as Record<string, string>;
}

/** Each tensor the index names must be in the shard it names, or loaders that trust the index would disagree with us. */
function checkIndexAgrees(dir: string, index: Record<string, string>, tensors: Map<string, HfTensorRef>): void {
  for (const [name, shard] of Object.entries(index)) {
    const ref = tensors.get(name);
    if (!ref) throw new HfDirError(`${dir}: tensor ${name} is listed in ${INDEX} but not in ${shard}`);
    if (ref.file !== join(dir, shard)) {
      throw new HfDirError(`${dir}: tensor ${name} is listed in ${INDEX} under ${shard} but is in ${ref.file}`);
    }
  }
}

/**
 * Writes a directory that `from_pretrained` loads: JSON files pretty-printed, weights in model.safetensors,
 * or, past maxShardBytes, in model-0000i-of-0000n.safetensors shards plus the index. Every file is written
 * under a temporary name and renamed; weight files of an earlier layout left in the directory are removed.
 */
export function writeHfDirectory(
  dir: string,
  d: {
    config: object;
    tokenizer: object;
    tokenizerConfig: object;
    generationConfig?: object;
    tensors: { name: string; shape: number[]; data: Float32Array }[];
    dtype: SafetensorsFloatDtype;
    maxShardBytes?: number;
  },
): void {
  mkdirSync(dir, { recursive: true });
  writeJson(join(dir, 'config.json'), d.config);
  writeJson(join(dir, 'tokenizer.json'), d.tokenizer);
  writeJson(join(dir, 'tokenizer_config.json'), d.tokenizerConfig);
  if (d.generationConfig) writeJson(join(dir, 'generation_config.json'), d.generationConfig);

  const shards = packShards(d.tensors, DTYPE_BYTES[d.dtype], d.maxShardBytes ?? 2_000_000_000);
  // transformers rejects safetensors files whose metadata lacks a known format.
  const metadata = { format: 'pt' };
  const written = new Set<string>();
  if (shards.length === 1) {
    writeSafetensors(join(dir, 'model.safetensors'), shards[0], d.dtype, metadata);
    written.add('model.safetensors');
  } else {
    const weightMap: Record<string, string> = {};
    const pad = (i: number) => String(i).padStart(5, '0');
    shards.forEach((tensors, i) => {
      const file = `model-${pad(i + 1)}-of-${pad(shards.length)}.safetensors`;
      writeSafetensors(join(dir, file), tensors, d.dtype, metadata);
      written.add(file);
      for (const t of tensors) weightMap[t.name] = file;
    });
    const totalSize = d.tensors.reduce((sum, t) => sum + t.data.length * DTYPE_BYTES[d.dtype], 0);
    const sortedMap = Object.fromEntries(Object.entries(weightMap).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    writeJson(join(dir, INDEX), { metadata: { total_size: totalSize }, weight_map: sortedMap });
    written.add(INDEX);
  }
  // A stale model.safetensors next to new shards (or the reverse) would make the directory ambiguous.
  for (const f of readdirSync(dir)) {
    const isWeights = f === 'model.safetensors' || f === INDEX || /^model-\d+-of-\d+\.safetensors$/.test(f);
    if (isWeights && !written.has(f)) rmSync(join(dir, f));
  }
}

/** Greedy, in order, like transformers' sharding: a new shard starts when the next tensor would overflow; an oversized tensor gets its own. */
function packShards<T extends { name: string; data: Float32Array }>(tensors: T[], bytesPerValue: number, maxShardBytes: number): T[][] {
  const seen = new Set<string>();
  const shards: T[][] = [[]];
  let size = 0;
  for (const t of tensors) {
    if (seen.has(t.name)) throw new HfDirError(`tensor ${t.name} is given twice`);
    seen.add(t.name);
    const bytes = t.data.length * bytesPerValue;
    if (size > 0 && size + bytes > maxShardBytes) {
      shards.push([]);
      size = 0;
    }
    shards[shards.length - 1].push(t);
    size += bytes;
  }
  return shards;
}

function writeJson(path: string, value: object): void {
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}`;
  writeFileSync(tmp, JSON.stringify(value, null, 2) + '\n');
  renameSync(tmp, path);
}
