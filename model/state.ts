/**
 * Training state <-> one Uint8Array:
 *
 *   "T1ST" | u32 LE header length | header JSON (UTF-8) | zero pad to 4 bytes | float32 LE buffers
 *
 * The header holds the JSON parts (model family and config, step, Prng state, data cursor,
 * optimizer step count, caller extras) and, per array, its group, name, shape and byte offset into
 * the data section. Both model families (our transformer, the Llama family) use the same layout.
 * Float32 values round-trip bit for bit, so a resumed run continues exactly.
 */
import { endianness } from 'node:os';
import type { PrngState } from '../util/prng';
import { ModelConfigSchema, type ModelConfig } from './config';
import { LlamaConfigSchema, type LlamaConfig } from './llama-config';
import type { NamedArrays } from './params';
import type { PolicyOrigin } from './policy';
import { llamaParamShapes, paramShapes } from './shapes';

export interface TrainingState<C extends ModelConfig | LlamaConfig = ModelConfig> {
  config: C;
  /** Optimizer updates done. */
  step: number;
  prng: PrngState;
  /** Where the data order stands (JSON). */
  cursor: unknown;
  weights: NamedArrays;
  optimizer: { t: number; m: NamedArrays; v: NamedArrays };
  /** Further named arrays a trainer keeps (e.g. an RL anchor's weights), by group. */
  arrays?: Record<string, NamedArrays>;
  /** Further JSON a trainer keeps (e.g. its hyperparameters). */
  extra?: unknown;
}

/** Bytes that are not a training state this code can read: no retry makes them one. */
export class StateError extends Error {
  override name = 'StateError';
}

const MAGIC = 'T1ST';
const FORMAT = 1;

interface Entry {
  group: string;
  name: string;
  shape: number[];
  offset: number;
}

if (endianness() !== 'LE') throw new Error('model/state: little-endian platform required');

/** A Llama-family config (from a pretrained base) rather than our transformer's. */
function isLlama(c: ModelConfig | LlamaConfig): c is LlamaConfig {
  return 'architecture' in c;
}

export function encodeState(s: TrainingState<ModelConfig | LlamaConfig>): Uint8Array {
  const shapes = new Map(isLlama(s.config) ? llamaParamShapes(s.config) : paramShapes(s.config));
  const groups: [string, NamedArrays][] = [
    ['weights', s.weights],
    ['adam.m', s.optimizer.m],
    ['adam.v', s.optimizer.v],
    ...Object.entries(s.arrays ?? {}).map(([g, a]) => [`extra.${g}`, a] as [string, NamedArrays]),
  ];
  const entries: Entry[] = [];
  const buffers: Float32Array[] = [];
  let offset = 0;
  for (const [group, arrays] of groups) {
    for (const [name, values] of Object.entries(arrays)) {
      const shape = shapes.get(name) ?? [values.length];
      entries.push({ group, name, shape, offset });
      buffers.push(values);
      offset += values.byteLength;
    }
  }
  const header = new TextEncoder().encode(
    JSON.stringify({
      format: FORMAT,
      ...(isLlama(s.config) ? { family: 'llama' } : {}),
      config: s.config,
      step: s.step,
      prng: s.prng,
      cursor: s.cursor,
      adamT: s.optimizer.t,
      extra: s.extra,
      entries,
    }),
  );
  const dataStart = align4(8 + header.length);
  const bytes = new Uint8Array(dataStart + offset);
  bytes.set(new TextEncoder().encode(MAGIC), 0);
  new DataView(bytes.buffer).setUint32(4, header.length, true);
  bytes.set(header, 8);
  entries.forEach((e, i) =>
    bytes.set(new Uint8Array(buffers[i].buffer, buffers[i].byteOffset, buffers[i].byteLength), dataStart + e.offset),
  );
  return bytes;
}

/** A state of our transformer (a Llama-family state is refused by name). */
export function decodeState(bytes: Uint8Array): TrainingState {
  const s = decodeAnyState(bytes);
  if (isLlama(s.config)) throw new StateError(`state: a ${s.config.architecture} (Llama-family) state, not one of our transformer`);
  return s as TrainingState;
}

/** A state of a Llama-family model (one trained from a pretrained base). */
export function decodeLlamaState(bytes: Uint8Array): TrainingState<LlamaConfig> {
  const s = decodeAnyState(bytes);
  if (!isLlama(s.config)) throw new StateError('state: a state of our transformer, not of a Llama-family model');
  return s as TrainingState<LlamaConfig>;
}

/** A state of either family, as its header says. */
export function decodeAnyState(bytes: Uint8Array): TrainingState<ModelConfig | LlamaConfig> {
  if (bytes.length < 8 || new TextDecoder().decode(bytes.subarray(0, 4)) !== MAGIC)
    throw new StateError('state: not a T1 training state (bad magic)');
  const headerLength = new DataView(bytes.buffer, bytes.byteOffset).getUint32(4, true);
  let header;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength)));
  } catch {
    throw new StateError('state: header is not JSON (truncated or corrupt)');
  }
  if (header.format !== FORMAT) throw new StateError(`state: unsupported format ${header.format}`);
  const dataStart = align4(8 + headerLength);
  const groups: Record<string, NamedArrays> = {};
  for (const e of header.entries as Entry[]) {
    const n = e.shape.reduce((a, b) => a * b, 1);
    const start = dataStart + e.offset;
    if (start + 4 * n > bytes.length) throw new StateError(`state: truncated at "${e.group}/${e.name}"`);
    // Copy out: the source may be unaligned, and callers may keep the arrays after dropping the bytes.
    const values = new Float32Array(n);
    new Uint8Array(values.buffer).set(bytes.subarray(start, start + 4 * n));
    (groups[e.group] ??= {})[e.name] = values;
  }
  const arrays = Object.fromEntries(
    Object.entries(groups)
      .filter(([g]) => g.startsWith('extra.'))
      .map(([g, a]) => [g.slice('extra.'.length), a]),
  );
  return {
    config: header.family === 'llama' ? LlamaConfigSchema.parse(header.config) : ModelConfigSchema.parse(header.config),
    step: header.step,
    prng: header.prng,
    cursor: header.cursor,
    weights: groups.weights ?? {},
    optimizer: { t: header.adamT, m: groups['adam.m'] ?? {}, v: groups['adam.v'] ?? {} },
    ...(Object.keys(arrays).length ? { arrays } : {}),
    ...(header.extra !== undefined ? { extra: header.extra } : {}),
  };
}

function align4(n: number): number {
  return (n + 3) & ~3;
}

/** What a weights-only state holds of a model: its config and weights, and a pretrained policy's origin (its base). */
export type WeightsOnly = Pick<TrainingState<ModelConfig | LlamaConfig>, 'config' | 'weights'> & { origin?: PolicyOrigin };

/**
 * A model's config and weights (and origin) as a training state with nothing else in it: no
 * optimizer, step or cursor. The one weights-only encoding, of published weights and of anchor
 * checkpoints (rl/anchor), which are named by the sha256 of these bytes. Its Prng field is a
 * placeholder no reader seeds from; it stays [0, 0, 0, 0] (xoshiro's fixed point, never a live
 * state) because anchor names, and the RL epochs hashed on them, were recorded with it.
 */
export function encodeWeights({ config, weights, origin }: WeightsOnly): Uint8Array {
  return encodeState({
    config,
    step: 0,
    prng: [0, 0, 0, 0],
    cursor: null,
    weights,
    optimizer: { t: 0, m: {}, v: {} },
    ...(origin ? { extra: { origin } } : {}),
  });
}
