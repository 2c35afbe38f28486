/**
 * GGUF (llama.cpp's model file format), versions 2 and 3: read the header, read and dequantize one
 * tensor at a time, and write files. Layout, all little-endian:
 *
 *   "GGUF" u32 version, u64 tensor count, u64 metadata count
 *   metadata:     string key, u32 value type, value            (arrays: u32 item type, u64 n, n items)
 *   tensor infos: string name, u32 n_dims, i64 dims[n_dims], i32 ggml type, u64 offset
 *   padding to `general.alignment` (default 32), then the data section; each tensor's offset is
 *   relative to its start and a multiple of the alignment.
 *
 * Strings are a u64 byte length then UTF-8 bytes. dims are in ggml order: dims[0] is the row length
 * (fastest varying), so the row-major shape is dims reversed, and the data is already in that order.
 * Typed-array views over file bytes assume a little-endian host, which is every platform Node runs on.
 */
import { UserError } from '../util/errors';
import { closeSync, fstatSync, fsyncSync, openSync, readSync, renameSync, rmSync, writeSync } from 'node:fs';
import { F16_TABLE, bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from './f16';

export { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 };

/** The tensor types we can read (ggml type ids). */
export const GGML_TYPES = { F32: 0, F16: 1, Q4_0: 2, Q4_1: 3, Q8_0: 8, BF16: 30 } as const;
export type GgmlType = keyof typeof GGML_TYPES;

export type GgufValueType = 'u8' | 'i8' | 'u16' | 'i16' | 'u32' | 'i32' | 'f32' | 'bool' | 'string' | 'u64' | 'i64' | 'f64';
type Scalar = number | bigint | boolean | string;
/** A metadata value with its GGUF type, so a file read and written again keeps its types. 64-bit ints are bigint. */
export type GgufEntry = { type: GgufValueType; value: Scalar } | { type: 'array'; itemType: GgufValueType; value: Scalar[] };

export interface GgufTensorInfo {
  name: string;
  /** ggml order: dims[0] varies fastest (the row length). The row-major shape is [...dims].reverse(). */
  dims: number[];
  type: GgmlType;
  /** Absolute byte offset of the tensor's data in the file, and its byte length. */
  offset: number;
  byteLength: number;
}

export interface GgufHeader {
  version: number;
  metadata: Record<string, GgufEntry>;
  tensors: GgufTensorInfo[];
  alignment: number;
  /** Absolute offset of the data section (tensor offsets in the file are relative to it; ours are absolute). */
  dataOffset: number;
  fileSize: number;
}

export type GgufTensorOut =
  | { name: string; dims: number[]; type: 'F32' | 'F16' | 'BF16'; data: Float32Array }
  | { name: string; dims: number[]; typeId: number; raw: Uint8Array };

export class GgufError extends UserError {
  override name = 'GgufError';
}

const MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
const DEFAULT_ALIGNMENT = 32;
const MAX_DIMS = 4; // GGML_MAX_DIMS
const MAX_NAME_BYTES = 63; // GGML_MAX_NAME is 64 including the NUL

/** ggml type names by id, only to name an unsupported type in an error (ggml.h's enum ggml_type). */
// prettier-ignore
const GGML_TYPE_NAMES = [
  'F32', 'F16', 'Q4_0', 'Q4_1', 'Q4_2', 'Q4_3', 'Q5_0', 'Q5_1', 'Q8_0', 'Q8_1',
  'Q2_K', 'Q3_K', 'Q4_K', 'Q5_K', 'Q6_K', 'Q8_K', 'IQ2_XXS', 'IQ2_XS', 'IQ3_XXS', 'IQ1_S',
  'IQ4_NL', 'IQ3_S', 'IQ2_S', 'IQ4_XS', 'I8', 'I16', 'I32', 'I64', 'F64', 'IQ1_M',
  'BF16', 'Q4_0_4_4', 'Q4_0_4_8', 'Q4_0_8_8', 'TQ1_0', 'TQ2_0', 'IQ4_NL_4_4', 'IQ4_NL_4_8', 'IQ4_NL_8_8', 'MXFP4',
];

/** Values per block and bytes per block of each supported type (ggml-common.h's block_* structs). */
const BLOCKS: Record<GgmlType, { size: number; bytes: number }> = {
  F32: { size: 1, bytes: 4 },
  F16: { size: 1, bytes: 2 },
  BF16: { size: 1, bytes: 2 },
  Q8_0: { size: 32, bytes: 2 + 32 }, // f16 d, 32 x i8
  Q4_0: { size: 32, bytes: 2 + 16 }, // f16 d, 16 bytes of nibbles
  Q4_1: { size: 32, bytes: 2 + 2 + 16 }, // f16 d, f16 m, 16 bytes of nibbles
};

const SUPPORTED = Object.keys(GGML_TYPES).join(', ');
const TYPE_BY_ID = new Map<number, GgmlType>(Object.entries(GGML_TYPES).map(([name, id]) => [id, name as GgmlType]));

/** `Q4_K (12)`, for messages. */
function typeName(id: number): string {
  return `${GGML_TYPE_NAMES[id] ?? 'unknown'} (${id})`;
}

/** GGUF value types by id; 9 is an array (of one item type). */
const VALUE_TYPES: (GgufValueType | 'array')[] = [
  'u8',
  'i8',
  'u16',
  'i16',
  'u32',
  'i32',
  'f32',
  'bool',
  'string',
  'array',
  'u64',
  'i64',
  'f64',
];
/** Bytes an item takes at least (a string: its length prefix), to refuse absurd array lengths before allocating. */
const MIN_BYTES: Record<GgufValueType, number> = {
  u8: 1,
  i8: 1,
  bool: 1,
  u16: 2,
  i16: 2,
  u32: 4,
  i32: 4,
  f32: 4,
  string: 8,
  u64: 8,
  i64: 8,
  f64: 8,
};

// Quote names and keys in messages: keeps a message one line whatever the file holds.
const q = (s: string) => JSON.stringify(s);
const align = (n: number, a: number) => Math.ceil(n / a) * a;

// ---------------------------------------------------------------------------------------------
// Reading

/** Sequential reads through a file descriptor, a buffered chunk at a time (headers can be MBs, files GBs). */
class HeaderReader {
  private buf = Buffer.alloc(1 << 20);
  private bufStart = 0; // file position of buf[0]
  private end = 0; // bytes of buf holding file data
  private at = 0; // read cursor within buf
  /** What is being read, for the message if the file ends. */
  what = 'the header';

  constructor(
    private readonly fd: number,
    private readonly path: string,
    readonly fileSize: number,
  ) {}

  get position(): number {
    return this.bufStart + this.at;
  }
  get remaining(): number {
    return this.fileSize - this.position;
  }

  truncated(): GgufError {
    return new GgufError(`${this.path}: truncated header: the file ends (${this.fileSize} bytes) while reading ${this.what}`);
  }

  /** Makes n bytes available at the cursor, advances past them and returns where they start in buf. */
  private take(n: number): number {
    if (this.at + n > this.end) this.fill(n);
    const i = this.at;
    this.at += n;
    return i;
  }

  private fill(n: number): void {
    if (n > this.remaining) throw this.truncated();
    // Move the unread tail to the front (into a bigger buffer if n needs it), then read after it.
    const buf = n > this.buf.length ? Buffer.alloc(Math.max(n, 2 * this.buf.length)) : this.buf;
    this.buf.copy(buf, 0, this.at, this.end);
    this.end -= this.at;
    this.bufStart += this.at;
    this.at = 0;
    this.buf = buf;
    while (this.end < n) {
      const got = readSync(this.fd, this.buf, this.end, this.buf.length - this.end, this.bufStart + this.end);
      if (got === 0) throw this.truncated();
      this.end += got;
    }
  }

  // take() before touching this.buf: it may swap in a bigger buffer.
  private num<T>(n: number, read: (buf: Buffer, i: number) => T): T {
    const i = this.take(n);
    return read(this.buf, i);
  }
  u8 = () => this.num(1, (b, i) => b.readUInt8(i));
  i8 = () => this.num(1, (b, i) => b.readInt8(i));
  u16 = () => this.num(2, (b, i) => b.readUInt16LE(i));
  i16 = () => this.num(2, (b, i) => b.readInt16LE(i));
  u32 = () => this.num(4, (b, i) => b.readUInt32LE(i));
  i32 = () => this.num(4, (b, i) => b.readInt32LE(i));
  f32 = () => this.num(4, (b, i) => b.readFloatLE(i));
  f64 = () => this.num(8, (b, i) => b.readDoubleLE(i));
  u64 = () => this.num(8, (b, i) => b.readBigUInt64LE(i));
  i64 = () => this.num(8, (b, i) => b.readBigInt64LE(i));

  /** A u64 count or offset as a number (exact below 2^53, which any real file is). */
  size(what: string): number {
    const v = this.u64();
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new GgufError(`${this.path}: ${what} ${v} is too large`);
    return Number(v);
  }

  string(): string {
    const n = this.size(`length of ${this.what}`);
    if (n > this.remaining) throw this.truncated();
    const i = this.take(n);
    return this.buf.toString('utf8', i, i + n);
  }

  scalar(type: GgufValueType): Scalar {
    switch (type) {
      case 'u8':
        return this.u8();
      case 'i8':
        return this.i8();
      case 'u16':
        return this.u16();
      case 'i16':
        return this.i16();
      case 'u32':
        return this.u32();
      case 'i32':
        return this.i32();
      case 'f32':
        return this.f32();
      case 'bool':
        return this.u8() !== 0;
      case 'string':
        return this.string();
      case 'u64':
        return this.u64();
      case 'i64':
        return this.i64();
      case 'f64':
        return this.f64();
    }
  }
}

/** Opens path for reading and runs fn with its descriptor and size; an unreadable path is a GgufError. */
function withFile<T>(path: string, fn: (fd: number, fileSize: number) => T): T {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    throw new GgufError(`${path}: cannot open: ${(err as Error).message}`);
  }
  try {
    return fn(fd, fstatSync(fd).size);
  } finally {
    closeSync(fd);
  }
}

/** Reads the header (metadata + tensor infos) without reading tensor data. */
export function readGgufHeader(path: string): GgufHeader {
  return withFile(path, (fd, fileSize) => {
    const r = new HeaderReader(fd, path, fileSize);
    if (fileSize < 4 || r.u32() !== MAGIC) throw new GgufError(`${path}: not a GGUF file (it does not start with "GGUF")`);
    r.what = 'the version';
    const version = r.u32();
    if (version === 0x02000000 || version === 0x03000000) throw new GgufError(`${path}: big-endian GGUF files are not supported`);
    if (version !== 2 && version !== 3) throw new GgufError(`${path}: GGUF version ${version} is not supported (only 2 and 3)`);
    r.what = 'the tensor count';
    const nTensors = r.size('tensor count');
    r.what = 'the metadata count';
    const nKv = r.size('metadata count');

    const metadata: Record<string, GgufEntry> = {};
    for (let i = 0; i < nKv; i++) {
      r.what = `metadata key #${i}`;
      const key = r.string();
      if (Object.hasOwn(metadata, key)) throw new GgufError(`${path}: duplicate metadata key ${q(key)}`);
      r.what = `metadata ${q(key)}`;
      // defineProperty, not assignment: a key such as "__proto__" stays an ordinary key.
      Object.defineProperty(metadata, key, { value: readEntry(r, path, key), enumerable: true, writable: true, configurable: true });
    }
    const alignment = alignmentOf(metadata, path);

    const tensors: GgufTensorInfo[] = [];
    const names = new Set<string>();
    for (let i = 0; i < nTensors; i++) {
      r.what = `tensor info #${i}`;
      const name = r.string();
      if (names.has(name)) throw new GgufError(`${path}: duplicate tensor name ${q(name)}`);
      names.add(name);
      r.what = `tensor info ${q(name)}`;
      const nDims = r.u32();
      if (nDims > MAX_DIMS) throw new GgufError(`${path}: tensor ${q(name)} has ${nDims} dims, at most ${MAX_DIMS} are allowed`);
      const dims: number[] = [];
      for (let d = 0; d < nDims; d++) {
        const dim = r.i64();
        if (dim < 0n || dim > BigInt(Number.MAX_SAFE_INTEGER)) throw new GgufError(`${path}: tensor ${q(name)} has invalid dim ${dim}`);
        dims.push(Number(dim));
      }
      const typeId = r.i32();
      const offset = r.size(`offset of tensor ${q(name)}`);
      const type = TYPE_BY_ID.get(typeId);
      if (!type)
        throw new GgufError(`${path}: tensor ${q(name)} has type ${typeName(typeId)}, which is not supported (supported: ${SUPPORTED})`);
      tensors.push({ name, dims, type, offset, byteLength: tensorByteLength(dims, type, `${path}: tensor ${q(name)}`) });
    }

    // The data section starts at the next multiple of the alignment after the tensor infos.
    const dataOffset = align(r.position, alignment);
    for (const t of tensors) {
      if (t.offset % alignment)
        throw new GgufError(`${path}: tensor ${q(t.name)} offset ${t.offset} is not a multiple of the alignment ${alignment}`);
      t.offset += dataOffset;
      if (t.offset + t.byteLength > fileSize) {
        throw new GgufError(
          `${path}: tensor ${q(t.name)} data (bytes ${t.offset}..${t.offset + t.byteLength}) extends past the end of the file (${fileSize} bytes): the file is truncated`,
        );
      }
    }
    return { version, metadata, tensors, alignment, dataOffset, fileSize };
  });
}

function readEntry(r: HeaderReader, path: string, key: string): GgufEntry {
  const typeId = r.u32();
  const type = VALUE_TYPES[typeId];
  if (type === undefined) throw new GgufError(`${path}: metadata ${q(key)} has unknown value type ${typeId}`);
  if (type !== 'array') return { type, value: r.scalar(type) };

  const itemTypeId = r.u32();
  const itemType = VALUE_TYPES[itemTypeId];
  if (itemType === 'array') throw new GgufError(`${path}: metadata ${q(key)} is an array of arrays, which is not supported`);
  if (itemType === undefined) throw new GgufError(`${path}: metadata ${q(key)} is an array of unknown value type ${itemTypeId}`);
  const n = r.size(`length of metadata ${q(key)}`);
  if (n * MIN_BYTES[itemType] > r.remaining) throw r.truncated();
  const value = new Array<Scalar>(n);
  for (let i = 0; i < n; i++) value[i] = r.scalar(itemType);
  return { type: 'array', itemType, value };
}

/** `general.alignment` if set (a u32 power of two, as llama.cpp requires), else 32. */
function alignmentOf(metadata: Record<string, GgufEntry>, path: string): number {
  if (!Object.hasOwn(metadata, 'general.alignment')) return DEFAULT_ALIGNMENT;
  const { type, value } = metadata['general.alignment'];
  if (type !== 'u32' || typeof value !== 'number' || value <= 0 || (value & (value - 1)) !== 0) {
    throw new GgufError(`${path}: metadata "general.alignment" must be a u32 power of two, got ${type} ${String(value)}`);
  }
  return value;
}

/** Number of values of a tensor (1 for no dims). */
function elementCount(dims: number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

/** Bytes of a tensor's data; each row (dims[0] values) must be whole blocks, as ggml lays rows out block by block. */
function tensorByteLength(dims: number[], type: GgmlType, where: string): number {
  const block = BLOCKS[type];
  const row = dims[0] ?? 1;
  if (row % block.size) throw new GgufError(`${where} has ${row} values per row, not a multiple of the ${type} block size ${block.size}`);
  const count = elementCount(dims);
  if (!Number.isSafeInteger(count)) throw new GgufError(`${where} has too many values (${dims.join(' x ')})`);
  return (count / block.size) * block.bytes;
}

/** Convenience: a metadata value (plain value or array of values), or undefined. */
export function ggufValue(h: GgufHeader, key: string): GgufEntry['value'] | undefined {
  return Object.hasOwn(h.metadata, key) ? h.metadata[key].value : undefined;
}

/** One tensor's data dequantized to float32, in row-major order of [...dims].reverse(). Reads only that tensor's bytes. */
export function readGgufTensor(path: string, tensor: GgufTensorInfo): Float32Array {
  return withFile(path, (fd, fileSize) => {
    const end = tensor.offset + tensor.byteLength;
    if (end > fileSize)
      throw new GgufError(`${path}: tensor ${q(tensor.name)} data extends past the end of the file (${end} > ${fileSize} bytes)`);
    const bytes = Buffer.allocUnsafe(tensor.byteLength);
    for (let done = 0; done < bytes.length;) {
      // readSync takes at most 2 GiB per call.
      const got = readSync(fd, bytes, done, Math.min(bytes.length - done, 1 << 30), tensor.offset + done);
      if (got === 0) throw new GgufError(`${path}: tensor ${q(tensor.name)} data ends early: the file is truncated`);
      done += got;
    }
    return dequantize(tensor.type, bytes, elementCount(tensor.dims));
  });
}

// ---------------------------------------------------------------------------------------------
// Dequantization (ggml-quants.c's dequantize_row_*). In the 4-bit types, byte j of a block holds
// value j in its low nibble and value j+16 in its high nibble.

/** Dequantizes `count` values of `type` from raw bytes. */
export function dequantize(type: GgmlType, bytes: Uint8Array, count: number): Float32Array {
  const block = BLOCKS[type];
  if (!block) throw new GgufError(`dequantize: unsupported type ${String(type)} (supported: ${SUPPORTED})`);
  if (!Number.isSafeInteger(count) || count < 0 || count % block.size) {
    throw new GgufError(`dequantize ${type}: count ${count} is not a multiple of the block size ${block.size}`);
  }
  const nBlocks = count / block.size;
  const need = nBlocks * block.bytes;
  if (bytes.length < need) throw new GgufError(`dequantize ${type}: ${count} values need ${need} bytes, got ${bytes.length}`);

  const out = new Float32Array(count);
  const f16 = (o: number) => F16_TABLE[bytes[o] | (bytes[o + 1] << 8)];
  switch (type) {
    case 'F32':
      new Uint8Array(out.buffer).set(bytes.subarray(0, need)); // a copy: bytes may sit at an unaligned offset
      break;
    case 'F16':
      for (let i = 0; i < count; i++) out[i] = f16(2 * i);
      break;
    case 'BF16': {
      const bits = new Uint32Array(out.buffer); // bf16 is the top half of a float32
      for (let i = 0; i < count; i++) bits[i] = (bytes[2 * i] | (bytes[2 * i + 1] << 8)) << 16;
      break;
    }
    case 'Q8_0': {
      const qs = new Int8Array(bytes.buffer, bytes.byteOffset, need);
      for (let b = 0, o = 0, y = 0; b < nBlocks; b++, o += 34, y += 32) {
        const d = f16(o);
        for (let j = 0; j < 32; j++) out[y + j] = d * qs[o + 2 + j];
      }
      break;
    }
    case 'Q4_0':
      for (let b = 0, o = 0, y = 0; b < nBlocks; b++, o += 18, y += 32) {
        const d = f16(o);
        for (let j = 0; j < 16; j++) {
          const v = bytes[o + 2 + j];
          out[y + j] = d * ((v & 15) - 8);
          out[y + j + 16] = d * ((v >> 4) - 8);
        }
      }
      break;
    case 'Q4_1':
      // d*q is exact in float32, so the one rounding of + m makes this bit-identical to ggml's float math.
      for (let b = 0, o = 0, y = 0; b < nBlocks; b++, o += 20, y += 32) {
        const d = f16(o);
        const m = f16(o + 2);
        for (let j = 0; j < 16; j++) {
          const v = bytes[o + 4 + j];
          out[y + j] = d * (v & 15) + m;
          out[y + j + 16] = d * (v >> 4) + m;
        }
      }
      break;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Writing

/** An append-only byte buffer that grows as needed, for the header. */
class ByteWriter {
  buf = Buffer.alloc(1 << 16);
  length = 0;

  /** Reserves n bytes and returns where they start. */
  private room(n: number): number {
    if (this.length + n > this.buf.length) {
      const buf = Buffer.alloc(Math.max(2 * this.buf.length, this.length + n));
      this.buf.copy(buf, 0, 0, this.length);
      this.buf = buf;
    }
    const i = this.length;
    this.length += n;
    return i;
  }

  // room() before touching this.buf: it may swap in a bigger buffer.
  private num(n: number, write: (buf: Buffer, i: number) => void): void {
    const i = this.room(n);
    write(this.buf, i);
  }
  u8 = (v: number) => this.num(1, (b, i) => b.writeUInt8(v, i));
  i8 = (v: number) => this.num(1, (b, i) => b.writeInt8(v, i));
  u16 = (v: number) => this.num(2, (b, i) => b.writeUInt16LE(v, i));
  i16 = (v: number) => this.num(2, (b, i) => b.writeInt16LE(v, i));
  u32 = (v: number) => this.num(4, (b, i) => b.writeUInt32LE(v, i));
  i32 = (v: number) => this.num(4, (b, i) => b.writeInt32LE(v, i));
  f32 = (v: number) => this.num(4, (b, i) => b.writeFloatLE(v, i));
  f64 = (v: number) => this.num(8, (b, i) => b.writeDoubleLE(v, i));
  u64 = (v: bigint | number) => this.num(8, (b, i) => b.writeBigUInt64LE(BigInt(v), i));
  i64 = (v: bigint | number) => this.num(8, (b, i) => b.writeBigInt64LE(BigInt(v), i));

  string(s: string): void {
    const bytes = Buffer.from(s, 'utf8');
    this.u64(bytes.length);
    const i = this.room(bytes.length);
    bytes.copy(this.buf, i);
  }

  /** Zero bytes up to the next multiple of a. */
  pad(a: number): void {
    this.room(align(this.length, a) - this.length); // Buffer.alloc zero-filled them
  }

  /** A value already checked by validScalar. */
  scalar(type: GgufValueType, v: Scalar): void {
    if (type === 'bool') this.u8(v ? 1 : 0);
    else if (type === 'string') this.string(v as string);
    else if (type === 'u64' || type === 'i64') this[type](v as bigint | number);
    else this[type](v as number);
  }
}

const INT_RANGES: Partial<Record<GgufValueType, [bigint, bigint]>> = {
  u8: [0n, 0xffn],
  i8: [-0x80n, 0x7fn],
  u16: [0n, 0xffffn],
  i16: [-0x8000n, 0x7fffn],
  u32: [0n, 0xffffffffn],
  i32: [-0x80000000n, 0x7fffffffn],
  u64: [0n, 2n ** 64n - 1n],
  i64: [-(2n ** 63n), 2n ** 63n - 1n],
};

/** Whether v can be stored as type: 64-bit ints as a bigint or a safe-integer number, smaller ints as numbers. */
function validScalar(type: GgufValueType, v: Scalar): boolean {
  if (type === 'bool') return typeof v === 'boolean';
  if (type === 'string') return typeof v === 'string';
  if (type === 'f32' || type === 'f64') return typeof v === 'number';
  const [lo, hi] = INT_RANGES[type]!;
  if (typeof v === 'bigint') return (type === 'u64' || type === 'i64') && v >= lo && v <= hi;
  return typeof v === 'number' && Number.isSafeInteger(v) && BigInt(v) >= lo && BigInt(v) <= hi;
}

function writeEntry(w: ByteWriter, path: string, key: string, entry: GgufEntry): void {
  const bad = (what: string) => new GgufError(`${path}: metadata ${q(key)}: ${what}`);
  if (!key) throw new GgufError(`${path}: metadata key must not be empty`);
  w.string(key);
  if (entry.type === 'array') {
    if (!VALUE_TYPES.includes(entry.itemType) || (entry.itemType as string) === 'array')
      throw bad(`invalid array item type ${q(String(entry.itemType))}`);
    if (!Array.isArray(entry.value)) throw bad('an array entry needs an array value');
    w.u32(VALUE_TYPES.indexOf('array'));
    w.u32(VALUE_TYPES.indexOf(entry.itemType));
    w.u64(entry.value.length);
    entry.value.forEach((v, i) => {
      if (!validScalar(entry.itemType, v)) throw bad(`item ${i} (${String(v)}) is not a valid ${entry.itemType}`);
      w.scalar(entry.itemType, v);
    });
  } else {
    if (!VALUE_TYPES.includes(entry.type)) throw bad(`invalid value type ${q(String(entry.type))}`);
    if (!validScalar(entry.type, entry.value)) throw bad(`${String(entry.value)} is not a valid ${entry.type}`);
    w.u32(VALUE_TYPES.indexOf(entry.type));
    w.scalar(entry.type, entry.value);
  }
}

/** A tensor's type id and data size, after checking its name, dims and data against each other. */
function planTensor(path: string, t: GgufTensorOut, names: Set<string>): { typeId: number; byteLength: number } {
  const where = `${path}: tensor ${q(t.name)}`;
  if (!t.name || Buffer.byteLength(t.name) > MAX_NAME_BYTES) throw new GgufError(`${where}: a name must be 1 to ${MAX_NAME_BYTES} bytes`);
  if (names.has(t.name)) throw new GgufError(`${path}: duplicate tensor name ${q(t.name)}`);
  names.add(t.name);
  if (t.dims.length < 1 || t.dims.length > MAX_DIMS || !t.dims.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new GgufError(`${where}: dims [${t.dims.join(', ')}] must be 1 to ${MAX_DIMS} non-negative integers`);
  }
  if ('raw' in t) {
    if (!Number.isInteger(t.typeId) || t.typeId < 0 || t.typeId > 0x7fffffff) throw new GgufError(`${where}: invalid type id ${t.typeId}`);
    // Known types get their size checked; unknown ones are taken as given.
    const type = TYPE_BY_ID.get(t.typeId);
    if (type) {
      const byteLength = tensorByteLength(t.dims, type, where);
      if (t.raw.length !== byteLength)
        throw new GgufError(`${where}: ${type} [${t.dims.join(', ')}] takes ${byteLength} bytes, got ${t.raw.length}`);
    }
    return { typeId: t.typeId, byteLength: t.raw.length };
  }
  if (t.type !== 'F32' && t.type !== 'F16' && t.type !== 'BF16')
    throw new GgufError(`${where}: float data can be stored as F32, F16 or BF16, not ${String(t.type)}`);
  const count = elementCount(t.dims);
  if (t.data.length !== count) throw new GgufError(`${where}: dims [${t.dims.join(', ')}] hold ${count} values, data has ${t.data.length}`);
  return { typeId: GGML_TYPES[t.type], byteLength: count * BLOCKS[t.type].bytes };
}

/** A tensor's bytes as stored in the file. */
function encodeTensor(t: GgufTensorOut): Uint8Array {
  if ('raw' in t) return t.raw;
  const { data } = t;
  if (t.type === 'F32') return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const half = new Uint16Array(data.length);
  const convert = t.type === 'F16' ? f32ToF16 : f32ToBf16;
  for (let i = 0; i < data.length; i++) half[i] = convert(data[i]);
  return new Uint8Array(half.buffer);
}

function writeAll(fd: number, bytes: Uint8Array): void {
  for (let done = 0; done < bytes.length;) done += writeSync(fd, bytes, done, Math.min(bytes.length - done, 1 << 30));
}

/**
 * Writes a GGUF v3 file: metadata in the given key order, then tensor infos, then data aligned to
 * `general.alignment` (default 32). Float32 data is stored as F32, F16 or BF16 (round to nearest
 * even); `raw` tensors are written byte for byte with the given type id. Writes `path.tmp-<pid>`
 * and renames it, so a crash never leaves a half-written file under the name.
 */
export function writeGguf(path: string, metadata: Record<string, GgufEntry>, tensors: GgufTensorOut[]): void {
  const alignment = alignmentOf(metadata, path);
  const names = new Set<string>();
  const plans = tensors.map((t) => planTensor(path, t, names));

  const w = new ByteWriter();
  w.u32(MAGIC);
  w.u32(3);
  w.u64(tensors.length);
  w.u64(Object.keys(metadata).length);
  for (const [key, entry] of Object.entries(metadata)) writeEntry(w, path, key, entry);
  let offset = 0; // relative to the data section
  tensors.forEach((t, i) => {
    w.string(t.name);
    w.u32(t.dims.length);
    for (const d of t.dims) w.i64(d);
    w.i32(plans[i].typeId);
    w.u64(offset);
    offset = align(offset + plans[i].byteLength, alignment);
  });
  w.pad(alignment);

  const tmp = `${path}.tmp-${process.pid}`;
  let fd: number | undefined;
  try {
    fd = openSync(tmp, 'w');
    writeAll(fd, w.buf.subarray(0, w.length));
    const zeros = new Uint8Array(alignment);
    tensors.forEach((t, i) => {
      writeAll(fd!, encodeTensor(t));
      writeAll(fd!, zeros.subarray(0, align(plans[i].byteLength, alignment) - plans[i].byteLength)); // ggml pads every tensor, the last too
    });
    fsyncSync(fd); // the data is on disk before the name points at it
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, path);
  } catch (err) {
    if (fd !== undefined) closeSync(fd);
    rmSync(tmp, { force: true });
    throw err instanceof GgufError ? err : new GgufError(`${path}: cannot write: ${(err as Error).message}`);
  }
}
