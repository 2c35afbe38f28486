import { UserError } from '../util/errors';
import { closeSync, fstatSync, openSync, readSync, renameSync, rmSync, writeSync } from 'node:fs';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from './gguf';

/**
 * The safetensors format (Hugging Face's weight files): a u64 little-endian header length N, N bytes of
 * JSON `{ "__metadata__"?: {str: str}, name: { dtype, shape, data_offsets: [begin, end] }, … }` whose
 * offsets are relative to the data section at 8 + N, then the raw little-endian data.
 */

export class SafetensorsError extends UserError {
  override name = 'SafetensorsError';
}

export interface SafetensorsTensor {
  name: string;
  dtype: string;
  shape: number[];
  /** Absolute file offsets of the tensor's bytes. */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  tensors: SafetensorsTensor[];
  metadata: Record<string, string>;
  fileSize: number;
}

export type SafetensorsFloatDtype = 'F32' | 'F16' | 'BF16';

/** Every dtype the format defines, with its size, so a header can be checked even where we cannot read the data. */
const DTYPE_BYTES: Record<string, number> = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E4M3: 1,
  F8_E5M2: 1,
  U16: 2,
  I16: 2,
  F16: 2,
  BF16: 2,
  U32: 4,
  I32: 4,
  F32: 4,
  U64: 8,
  I64: 8,
  F64: 8,
};
const READABLE = ['F32', 'F16', 'BF16'];
/** Real headers are kilobytes to a few megabytes; anything near this is a corrupt length, not a header. */
const MAX_HEADER_BYTES = 100_000_000;

const product = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);

/** Reads exactly `into.length` bytes at `position`, looping because readSync may return short counts. */
function readExactly(fd: number, into: Uint8Array, position: number, path: string, what: string): void {
  let done = 0;
  while (done < into.length) {
    const n = readSync(fd, into, done, into.length - done, position + done);
    if (n === 0) throw new SafetensorsError(`${path}: file ends inside ${what} (read ${done} of ${into.length} bytes)`);
    done += n;
  }
}

/** Parses and validates the header only; the data stays on disk until a tensor is read. */
export function readSafetensorsHeader(path: string): SafetensorsHeader {
  const fd = openSync(path, 'r');
  try {
    const fileSize = fstatSync(fd).size;
    if (fileSize < 8) throw new SafetensorsError(`${path}: ${fileSize} bytes is too short for a safetensors file`);
    const lengthBytes = new Uint8Array(8);
    readExactly(fd, lengthBytes, 0, path, 'the header length');
    const headerLength = Number(Buffer.from(lengthBytes).readBigUInt64LE(0));
    if (headerLength > MAX_HEADER_BYTES || 8 + headerLength > fileSize) {
      throw new SafetensorsError(`${path}: header length ${headerLength} is impossible for a file of ${fileSize} bytes`);
    }
    const headerBytes = new Uint8Array(headerLength);
    readExactly(fd, headerBytes, 8, path, 'the header');
    return parseHeader(path, Buffer.from(headerBytes).toString('utf8'), 8 + headerLength, fileSize);
  } finally {
    closeSync(fd);
  }
}

function parseHeader(path: string, text: string, dataStart: number, fileSize: number): SafetensorsHeader {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new SafetensorsError(`${path}: header is not JSON (${(e as Error).message})`);
  }
  if (!isObject(json)) throw new SafetensorsError(`${path}: header is not a JSON object`);

  const metadata: Record<string, string> = {};
  const tensors: SafetensorsTensor[] = [];
  for (const [name, entry] of Object.entries(json)) {
    if (name === '__metadata__') {
      if (!isObject(entry)) throw new SafetensorsError(`${path}: __metadata__ is not an object`);
      for (const [k, v] of Object.entries(entry)) {
        if (typeof v !== 'string') throw new SafetensorsError(`${path}: __metadata__.${k} is not a string`);
        metadata[k] = v;
      }
      continue;
    }
    tensors.push(parseEntry(path, name, entry, dataStart, fileSize));
  }

  // Tensors may be stored in any order, but no two may share bytes.
  const byOffset = [...tensors].sort((a, b) => a.begin - b.begin || a.end - b.end);
  for (let i = 1; i < byOffset.length; i++) {
    const [prev, cur] = [byOffset[i - 1], byOffset[i]];
    if (cur.begin < prev.end) throw new SafetensorsError(`${path}: tensor ${cur.name} overlaps tensor ${prev.name}`);
  }
  return { tensors, metadata, fileSize };
}

function parseEntry(path: string, name: string, entry: unknown, dataStart: number, fileSize: number): SafetensorsTensor {
  const where = `${path}: tensor ${name}`;
  if (!isObject(entry)) throw new SafetensorsError(`${where}: header entry is not an object`);
  const { dtype, shape, data_offsets: offsets } = entry;
  if (typeof dtype !== 'string' || !(dtype in DTYPE_BYTES)) {
    throw new SafetensorsError(`${where}: unknown dtype ${JSON.stringify(dtype)}`);
  }
  if (!Array.isArray(shape) || !shape.every(isNonNegativeInt)) {
    throw new SafetensorsError(`${where}: shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isNonNegativeInt) || offsets[0] > offsets[1]) {
    throw new SafetensorsError(`${where}: data_offsets ${JSON.stringify(offsets)} is not [begin, end] with begin <= end`);
  }
  const [begin, end] = offsets as [number, number];
  const expected = product(shape as number[]) * DTYPE_BYTES[dtype];
  if (end - begin !== expected) {
    throw new SafetensorsError(
      `${where}: data_offsets [${begin}, ${end}] span ${end - begin} bytes but ${dtype} ${JSON.stringify(shape)} needs ${expected}`,
    );
  }
  if (dataStart + end > fileSize) {
    throw new SafetensorsError(`${where}: data_offsets [${begin}, ${end}] run past the data section (${fileSize - dataStart} bytes)`);
  }
  return { name, dtype, shape: shape as number[], begin: dataStart + begin, end: dataStart + end };
}

/** Reads one tensor as row-major float32, widening F16 and BF16. */
export function readSafetensorsTensor(path: string, t: SafetensorsTensor): Float32Array {
  if (!READABLE.includes(t.dtype)) {
    throw new SafetensorsError(`${path}: tensor ${t.name} has dtype ${t.dtype}; supported: ${READABLE.join(', ')}`);
  }
  const count = product(t.shape);
  const out = new Float32Array(count);
  const fd = openSync(path, 'r');
  try {
    if (t.dtype === 'F32') {
      // The file is little-endian like every platform Node runs on, so the bytes land directly in the result.
      readExactly(fd, new Uint8Array(out.buffer), t.begin, path, `tensor ${t.name}`);
      return out;
    }
    const halves = new Uint16Array(count);
    readExactly(fd, new Uint8Array(halves.buffer), t.begin, path, `tensor ${t.name}`);
    const widen = t.dtype === 'F16' ? f16ToF32 : bf16ToF32;
    for (let i = 0; i < count; i++) out[i] = widen(halves[i]);
    return out;
  } finally {
    closeSync(fd);
  }
}

/**
 * Writes tensors in the given order, converting from float32 to `dtype`. The header is padded with spaces
 * to a multiple of 8 (as the reference writer does, so the data section is aligned); the file appears
 * under its name only once complete.
 */
export function writeSafetensors(
  path: string,
  tensors: { name: string; shape: number[]; data: Float32Array }[],
  dtype: SafetensorsFloatDtype,
  metadata?: Record<string, string>,
): void {
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const t of tensors) {
    if (t.name === '__metadata__' || t.name in header) throw new SafetensorsError(`${path}: tensor ${t.name} is written twice`);
    if (t.data.length !== product(t.shape)) {
      throw new SafetensorsError(`${path}: tensor ${t.name} has ${t.data.length} values but shape ${JSON.stringify(t.shape)}`);
    }
    const bytes = t.data.length * DTYPE_BYTES[dtype];
    header[t.name] = { dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const headerBytes = Buffer.from(json, 'utf8');
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(headerBytes.length));

  const tmp = `${path}.tmp-${process.pid}-${Date.now()}`;
  try {
    const fd = openSync(tmp, 'w');
    try {
      writeAll(fd, length);
      writeAll(fd, headerBytes);
      for (const t of tensors) writeAll(fd, encode(t.data, dtype));
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

function encode(data: Float32Array, dtype: SafetensorsFloatDtype): Uint8Array {
  if (dtype === 'F32') return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const narrow = dtype === 'F16' ? f32ToF16 : f32ToBf16;
  const halves = new Uint16Array(data.length);
  for (let i = 0; i < data.length; i++) halves[i] = narrow(data[i]);
  return new Uint8Array(halves.buffer);
}

function writeAll(fd: number, bytes: Uint8Array): void {
  let done = 0;
  while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done);
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function isNonNegativeInt(x: unknown): x is number {
  return Number.isSafeInteger(x) && (x as number) >= 0;
}
