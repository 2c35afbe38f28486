import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getLlama, LlamaLogLevel, readGgufFileInfo } from 'node-llama-cpp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { smolLm2Gguf } from '../../../infra/models';
import {
  bf16ToF32,
  dequantize,
  f16ToF32,
  f32ToBf16,
  f32ToF16,
  GGML_TYPES,
  GgufError,
  ggufValue,
  readGgufHeader,
  readGgufTensor,
  writeGguf,
  type GgufEntry,
  type GgufTensorOut,
} from '../../../formats/gguf';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'gguf-test-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Little-endian 16-bit patterns as bytes. */
const u16le = (...hs: number[]) => Uint8Array.from(hs.flatMap((h) => [h & 0xff, h >> 8]));

/** A little-endian byte builder for hand-made files, independent of the writer under test. */
class Bytes {
  private parts: Buffer[] = [];
  private push(n: number, write: (b: Buffer) => void): this {
    const b = Buffer.alloc(n);
    write(b);
    this.parts.push(b);
    return this;
  }
  u32 = (v: number) => this.push(4, (b) => b.writeUInt32LE(v));
  u64 = (v: number | bigint) => this.push(8, (b) => b.writeBigUInt64LE(BigInt(v)));
  str = (s: string) => this.u64(Buffer.byteLength(s)).bytes(Buffer.from(s));
  bytes = (b: Uint8Array) => this.push(b.length, (buf) => buf.set(b));
  ascii = (s: string) => this.bytes(Buffer.from(s, 'latin1'));
  get length() {
    return this.parts.reduce((n, p) => n + p.length, 0);
  }
  padTo = (a: number) => this.bytes(new Uint8Array((a - (this.length % a)) % a));
  build = () => Buffer.concat(this.parts);
}

/** Asserts fn throws a one-line GgufError matching re. */
function expectGgufError(fn: () => unknown, re: RegExp): void {
  expect(fn).toThrow(GgufError);
  expect(fn).toThrow(re);
  expect(fn).not.toThrow(/\n/);
}

describe('f16 / bf16 conversions', () => {
  it('decodes f16 bit patterns', () => {
    expect(f16ToF32(0x3c00)).toBe(1);
    expect(f16ToF32(0xc000)).toBe(-2);
    expect(f16ToF32(0x7bff)).toBe(65504);
    expect(f16ToF32(0x0001)).toBe(5.960464477539063e-8); // 2^-24, smallest subnormal
    expect(f16ToF32(0x03ff)).toBe(0.00006097555160522461); // largest subnormal, 1023 * 2^-24
    expect(f16ToF32(0x0400)).toBe(0.00006103515625); // smallest normal, 2^-14
    expect(f16ToF32(0x3555)).toBe(0.333251953125);
    expect(f16ToF32(0x7c00)).toBe(Infinity);
    expect(f16ToF32(0xfc00)).toBe(-Infinity);
    expect(f16ToF32(0x7e00)).toBeNaN();
    expect(Object.is(f16ToF32(0x8000), -0)).toBe(true);
  });

  it('encodes f16 with round to nearest even', () => {
    expect(f32ToF16(1)).toBe(0x3c00);
    expect(f32ToF16(-2)).toBe(0xc000);
    expect(f32ToF16(65504)).toBe(0x7bff);
    expect(f32ToF16(65519)).toBe(0x7bff); // below the midpoint to 65536
    expect(f32ToF16(65520)).toBe(0x7c00); // the midpoint: 0x7bff is odd, so it rounds up, to inf
    expect(f32ToF16(1e6)).toBe(0x7c00);
    expect(f32ToF16(-Infinity)).toBe(0xfc00);
    expect(f32ToF16(2 ** -24)).toBe(0x0001);
    expect(f32ToF16(2 ** -14)).toBe(0x0400);
    expect(f32ToF16(2 ** -25)).toBe(0x0000); // tie between 0 and 2^-24: even is 0
    expect(f32ToF16(1.5 * 2 ** -25)).toBe(0x0001);
    expect(f32ToF16(3 * 2 ** -25)).toBe(0x0002); // tie between 1 and 2 units: even is 2
    expect(f32ToF16(1 + 2 ** -11)).toBe(0x3c00); // tie: keeps the even 0x3c00
    expect(f32ToF16(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie: goes to the even 0x3c02
    expect(f32ToF16(1 + 2 ** -11 + 2 ** -20)).toBe(0x3c01); // just above the tie
    expect(f32ToF16(1 - 2 ** -12)).toBe(0x3c00); // tie between 0x3bff and 1: rounding up carries into the exponent
    expect(f32ToF16(-0)).toBe(0x8000);
    expect(f32ToF16(1e-10)).toBe(0x0000);
    const nan = f32ToF16(NaN);
    expect(nan & 0x7c00).toBe(0x7c00);
    expect(nan & 0x03ff).not.toBe(0);
  });

  it('decodes and encodes bf16', () => {
    expect(bf16ToF32(0x3f80)).toBe(1);
    expect(bf16ToF32(0xc040)).toBe(-3);
    expect(bf16ToF32(0x4049)).toBe(3.140625);
    expect(bf16ToF32(0x7f80)).toBe(Infinity);
    expect(bf16ToF32(0x0001)).toBe(9.183549615799121e-41); // 2^-133, smallest subnormal
    expect(bf16ToF32(0x7fc0)).toBeNaN();
    expect(f32ToBf16(1)).toBe(0x3f80);
    expect(f32ToBf16(-2)).toBe(0xc000);
    expect(f32ToBf16(1 + 2 ** -8)).toBe(0x3f80); // tie: keeps the even 0x3f80
    expect(f32ToBf16(1 + 3 * 2 ** -8)).toBe(0x3f82); // tie: goes to the even 0x3f82
    expect(f32ToBf16(1 + 2 ** -8 + 2 ** -20)).toBe(0x3f81);
    expect(f32ToBf16(0.1)).toBe(0x3dcd);
    expect(f32ToBf16(3.4028234663852886e38)).toBe(0x7f80); // float32 max rounds up to inf
    expect(f32ToBf16(-Infinity)).toBe(0xff80);
    const nan = f32ToBf16(NaN);
    expect(nan & 0x7f80).toBe(0x7f80);
    expect(nan & 0x007f).not.toBe(0);
  });
});

describe('dequantize', () => {
  it('Q8_0: f16 d then 32 int8, value d*q', () => {
    const q1 = Array.from({ length: 32 }, (_, j) => j - 16);
    q1[0] = -128;
    q1[31] = 127;
    const q2 = new Array(32).fill(0);
    q2[5] = 3;
    q2[31] = -1;
    const bytes = Uint8Array.from([...u16le(0x3800), ...q1.map((v) => v & 0xff), ...u16le(0x4400), ...q2.map((v) => v & 0xff)]);
    // block 1: d = 0.5; block 2: d = 4
    expect(Array.from(dequantize('Q8_0', bytes, 64))).toEqual([
      -64, -7.5, -7, -6.5, -6, -5.5, -5, -4.5, -4, -3.5, -3, -2.5, -2, -1.5, -1, -0.5, 0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5, 5, 5.5, 6,
      6.5, 7, 63.5, 0, 0, 0, 0, 0, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, -4,
    ]);
  });

  it('Q4_0: byte j holds value j (low nibble) and j+16 (high nibble), value d*(q-8)', () => {
    const qs = Array.from({ length: 16 }, (_, j) => ((15 - j) << 4) | j);
    const bytes = Uint8Array.from([...u16le(0x4000), ...qs]); // d = 2
    expect(Array.from(dequantize('Q4_0', bytes, 32))).toEqual([
      -16, -14, -12, -10, -8, -6, -4, -2, 0, 2, 4, 6, 8, 10, 12, 14, 14, 12, 10, 8, 6, 4, 2, 0, -2, -4, -6, -8, -10, -12, -14, -16,
    ]);
  });

  it('Q4_1: f16 d, f16 m, nibbles as Q4_0, value d*q + m', () => {
    const qs = Array.from({ length: 16 }, (_, j) => (j << 4) | (15 - j));
    const bytes = Uint8Array.from([...u16le(0x3400, 0xbc00), ...qs]); // d = 0.25, m = -1
    expect(Array.from(dequantize('Q4_1', bytes, 32))).toEqual([
      2.75, 2.5, 2.25, 2, 1.75, 1.5, 1.25, 1, 0.75, 0.5, 0.25, 0, -0.25, -0.5, -0.75, -1, -1, -0.75, -0.5, -0.25, 0, 0.25, 0.5, 0.75, 1,
      1.25, 1.5, 1.75, 2, 2.25, 2.5, 2.75,
    ]);
  });

  it('F16, BF16 and F32', () => {
    const f16 = dequantize('F16', u16le(0x3c00, 0xc000, 0x7bff, 0x0001, 0x7c00, 0x3555, 0x8000), 7);
    expect(Array.from(f16)).toEqual([1, -2, 65504, 5.960464477539063e-8, Infinity, 0.333251953125, -0]);
    expect(Object.is(f16[6], -0)).toBe(true);
    const bf16 = dequantize('BF16', u16le(0x3f80, 0xc040, 0x4049, 0xff80, 0x0001), 5);
    expect(Array.from(bf16)).toEqual([1, -3, 3.140625, -Infinity, 9.183549615799121e-41]);
    // 1.5 = 0x3fc00000, -0.25 = 0xbe800000; at an odd offset, as a slice of a file buffer may be
    const f32 = Uint8Array.from([0xff, 0, 0, 0xc0, 0x3f, 0, 0, 0x80, 0xbe]).subarray(1);
    expect(Array.from(dequantize('F32', f32, 2))).toEqual([1.5, -0.25]);
  });

  it('refuses a count that is not whole blocks, or too few bytes', () => {
    expectGgufError(() => dequantize('Q8_0', new Uint8Array(34), 16), /Q8_0: count 16 is not a multiple of the block size 32/);
    expectGgufError(() => dequantize('Q4_1', new Uint8Array(20), 64), /Q4_1: 64 values need 40 bytes, got 20/);
  });
});

describe('writeGguf / readGgufHeader round trip', () => {
  const metadata: Record<string, GgufEntry> = {
    'general.architecture': { type: 'string', value: 'llama' },
    'general.alignment': { type: 'u32', value: 64 },
    't.u8': { type: 'u8', value: 200 },
    't.i8': { type: 'i8', value: -5 },
    't.u16': { type: 'u16', value: 60000 },
    't.i16': { type: 'i16', value: -30000 },
    't.u32': { type: 'u32', value: 4_000_000_000 },
    't.i32': { type: 'i32', value: -2_000_000_000 },
    't.f32': { type: 'f32', value: 1.5 },
    't.bool': { type: 'bool', value: true },
    't.string': { type: 'string', value: 'héllo ✓ "quoted"\n' },
    't.u64': { type: 'u64', value: 2n ** 63n + 5n },
    't.i64': { type: 'i64', value: -(2n ** 62n) },
    't.f64': { type: 'f64', value: Math.PI },
    't.strings': { type: 'array', itemType: 'string', value: ['a', '', 'ü', 'Ġ t'] },
    't.u64s': { type: 'array', itemType: 'u64', value: [1n, 2n ** 64n - 1n] },
    't.f32s': { type: 'array', itemType: 'f32', value: [0.5, -1] },
    't.bools': { type: 'array', itemType: 'bool', value: [true, false] },
    't.empty': { type: 'array', itemType: 'i32', value: [] },
  };
  // Two Q8_0 blocks: d = 1 with q = j - 16, then d = -0.5 with q = 2
  const q8 = Uint8Array.from([
    ...u16le(0x3c00),
    ...Array.from({ length: 32 }, (_, j) => (j - 16) & 0xff),
    ...u16le(0xb800),
    ...new Array(32).fill(2),
  ]);
  const tensors: GgufTensorOut[] = [
    { name: 'a.f32', dims: [3, 2], type: 'F32', data: Float32Array.from([1, 2, 3, 4, 5, 6]) },
    { name: 'b.f16', dims: [5], type: 'F16', data: Float32Array.from([1, 0.1, -2, 65504, 1e-7]) },
    { name: 'c.bf16', dims: [3, 1, 1], type: 'BF16', data: Float32Array.from([1, 0.1, -3.3]) },
    { name: 'd.q8', dims: [64], typeId: GGML_TYPES.Q8_0, raw: q8 },
    { name: 'e.3d', dims: [2, 3, 4], type: 'F32', data: Float32Array.from({ length: 24 }, (_, i) => i - 10.25) },
  ];

  it('keeps metadata types, key order and values, aligns data, and reads back the tensors', () => {
    const path = join(dir, 'round.gguf');
    writeGguf(path, metadata, tensors);
    expect(readdirSync(dir).filter((f) => f.includes('.tmp-'))).toEqual([]);
    const h = readGgufHeader(path);
    expect(h.version).toBe(3);
    expect(h.metadata).toEqual(metadata);
    expect(Object.keys(h.metadata)).toEqual(Object.keys(metadata));
    expect(ggufValue(h, 't.u64s')).toEqual([1n, 18446744073709551615n]);
    expect(ggufValue(h, 'missing')).toBeUndefined();
    expect(ggufValue(h, 'toString')).toBeUndefined();
    expect(h.alignment).toBe(64);
    expect(h.dataOffset % 64).toBe(0);
    expect(h.fileSize).toBe(readFileSync(path).length);
    expect(h.tensors.map((t) => [t.name, t.dims, t.type, t.byteLength])).toEqual([
      ['a.f32', [3, 2], 'F32', 24],
      ['b.f16', [5], 'F16', 10],
      ['c.bf16', [3, 1, 1], 'BF16', 6],
      ['d.q8', [64], 'Q8_0', 68],
      ['e.3d', [2, 3, 4], 'F32', 96],
    ]);
    // Packed in order, each at the next multiple of 64, the first at the start of the data section
    expect(h.tensors.map((t) => t.offset - h.dataOffset)).toEqual([0, 64, 128, 192, 320]);
    expect(h.fileSize).toBe(h.dataOffset + 320 + 128); // the last tensor is padded too

    const read = (name: string) =>
      Array.from(
        readGgufTensor(
          path,
          h.tensors.find((t) => t.name === name)!,
        ),
      );
    expect(read('a.f32')).toEqual([1, 2, 3, 4, 5, 6]);
    expect(read('b.f16')).toEqual([1, 0.0999755859375, -2, 65504, 1.1920928955078125e-7]);
    expect(read('c.bf16')).toEqual([1, 0.10009765625, -3.296875]);
    expect(read('d.q8')).toEqual([...Array.from({ length: 32 }, (_, j) => j - 16), ...new Array(32).fill(-1)]);
    expect(read('e.3d')).toEqual(Array.from({ length: 24 }, (_, i) => i - 10.25));
  });

  it('writes a file that node-llama-cpp parses to the same metadata and tensor infos', async () => {
    const path = join(dir, 'crosscheck.gguf');
    writeGguf(path, metadata, tensors);
    const ours = readGgufHeader(path);
    const info = await readGgufFileInfo(path, { logWarnings: false });
    expect(info.version).toBe(3);
    const theirs = (info.fullTensorInfo ?? []).map((t) => [t.name, t.dimensions.map(Number), t.ggmlType, Number(t.fileOffset)]);
    expect(theirs).toEqual(ours.tensors.map((t) => [t.name, t.dims, GGML_TYPES[t.type], t.offset]));
    const meta = info.metadata as unknown as Record<string, Record<string, unknown>>;
    expect(meta.general.architecture).toBe('llama');
    expect(meta.t.i16).toBe(-30000);
    expect(meta.t.f64).toBe(Math.PI);
    expect(meta.t.string).toBe('héllo ✓ "quoted"\n');
    expect(meta.t.strings).toEqual(['a', '', 'ü', 'Ġ t']);
    expect((meta.t.u64s as (number | bigint)[]).map((v) => BigInt(v))).toEqual([1n, 2n ** 64n - 1n]);
  });

  it('reads a hand-built GGUF v2 file (layout checked independently of the writer)', () => {
    const b = new Bytes()
      .ascii('GGUF')
      .u32(2)
      .u64(2) // tensors
      .u64(3) // metadata
      .str('general.alignment')
      .u32(4) // u32
      .u32(16)
      .str('general.name')
      .u32(8) // string
      .str('tiny')
      .str('tokenizer.ggml.scores')
      .u32(9) // array
      .u32(6) // of f32
      .u64(2)
      .bytes(Uint8Array.from([0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0])) // 1, -2
      .str('w')
      .u32(2)
      .u64(2)
      .u64(3)
      .u32(1) // F16
      .u64(0)
      .str('q')
      .u32(1)
      .u64(32)
      .u32(2) // Q4_0
      .u64(16);
    b.padTo(16);
    const dataOffset = b.length;
    b.bytes(u16le(0x3c00, 0x4000, 0x4200, 0x4400, 0x4500, 0x4600)) // 1..6, 12 bytes
      .padTo(16)
      .bytes(Uint8Array.from([...u16le(0x3800), ...new Array(16).fill(0x9a)])); // d = 0.5; low nibble 10, high 9
    const path = join(dir, 'hand.gguf');
    writeFileSync(path, b.build());

    const h = readGgufHeader(path);
    expect(h.version).toBe(2);
    expect(h.alignment).toBe(16);
    expect(h.dataOffset).toBe(dataOffset);
    expect(h.metadata).toEqual({
      'general.alignment': { type: 'u32', value: 16 },
      'general.name': { type: 'string', value: 'tiny' },
      'tokenizer.ggml.scores': { type: 'array', itemType: 'f32', value: [1, -2] },
    });
    expect(h.tensors).toEqual([
      { name: 'w', dims: [2, 3], type: 'F16', offset: dataOffset, byteLength: 12 },
      { name: 'q', dims: [32], type: 'Q4_0', offset: dataOffset + 16, byteLength: 18 },
    ]);
    expect(Array.from(readGgufTensor(path, h.tensors[0]))).toEqual([1, 2, 3, 4, 5, 6]);
    expect(Array.from(readGgufTensor(path, h.tensors[1]))).toEqual([...new Array(16).fill(1), ...new Array(16).fill(0.5)]);
  });

  it('refuses bad input to the writer and leaves an existing file alone', () => {
    const path = join(dir, 'keep.gguf');
    writeGguf(path, {}, [tensors[0]]);
    const before = readFileSync(path);
    const f32 = (name: string, dims: number[], n: number): GgufTensorOut => ({ name, dims, type: 'F32', data: new Float32Array(n) });
    expectGgufError(() => writeGguf(path, {}, [f32('x', [2], 2), f32('x', [2], 2)]), /keep\.gguf: duplicate tensor name "x"/);
    expectGgufError(() => writeGguf(path, {}, [f32('x', [3, 2], 5)]), /tensor "x": dims \[3, 2\] hold 6 values, data has 5/);
    expectGgufError(
      () => writeGguf(path, {}, [{ name: 'q', dims: [32], typeId: 8, raw: new Uint8Array(30) }]),
      /tensor "q": Q8_0 \[32\] takes 34 bytes, got 30/,
    );
    expectGgufError(() => writeGguf(path, { k: { type: 'u8', value: 256 } }, []), /metadata "k": 256 is not a valid u8/);
    expectGgufError(() => writeGguf(path, { k: { type: 'i32', value: 1n } }, []), /metadata "k": 1 is not a valid i32/);
    expectGgufError(
      () => writeGguf(path, { k: { type: 'array', itemType: 'u64', value: [-1n] } }, []),
      /metadata "k": item 0 \(-1\) is not a valid u64/,
    );
    expectGgufError(
      () => writeGguf(path, { 'general.alignment': { type: 'u32', value: 24 } }, []),
      /"general.alignment" must be a u32 power of two/,
    );
    expect(readFileSync(path).equals(before)).toBe(true);
    expectGgufError(() => writeGguf(join(dir, 'no-such-dir', 'x.gguf'), {}, []), /x\.gguf: cannot write: ENOENT/);
    expect(readdirSync(dir).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });
});

describe('real file: SmolLM2-135M-Instruct Q4_1', () => {
  it('parses the header like node-llama-cpp does', async () => {
    const path = await smolLm2Gguf();
    const h = readGgufHeader(path);
    expect(h.version).toBe(3);
    expect(h.tensors).toHaveLength(272);
    expect(Object.keys(h.metadata)).toHaveLength(33);
    expect(ggufValue(h, 'general.architecture')).toBe('llama');
    expect(ggufValue(h, 'llama.block_count')).toBe(30);
    expect(ggufValue(h, 'llama.embedding_length')).toBe(576);
    expect(ggufValue(h, 'tokenizer.ggml.tokens')).toHaveLength(49152);
    expect(ggufValue(h, 'tokenizer.ggml.merges')).toHaveLength(48900);
    expect(h.metadata['llama.rope.freq_base']).toEqual({ type: 'f32', value: 100000 });
    expect(h.alignment).toBe(32); // no general.alignment key: the default
    expect(new Set(h.tensors.map((t) => t.type))).toEqual(new Set(['F32', 'Q4_1', 'Q8_0']));
    expect(h.tensors[0]).toEqual({
      name: 'token_embd.weight',
      dims: [576, 49152],
      type: 'Q8_0',
      offset: h.dataOffset,
      byteLength: 30081024,
    });
    const last = h.tensors[h.tensors.length - 1];
    expect(last.offset + last.byteLength).toBe(h.fileSize);

    const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
    try {
      const model = await llama.loadModel({ modelPath: path });
      try {
        const info = model.fileInfo;
        expect(info.version).toBe(3);
        const theirs = (info.fullTensorInfo ?? []).map((t) => ({
          name: t.name,
          dims: t.dimensions.map(Number),
          typeId: t.ggmlType,
          offset: Number(t.fileOffset),
        }));
        expect(h.tensors.map((t) => ({ name: t.name, dims: t.dims, typeId: GGML_TYPES[t.type], offset: t.offset }))).toEqual(theirs);
        // node-llama-cpp nests metadata by the dots in its keys
        for (const [key, entry] of Object.entries(h.metadata)) {
          const value = key.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown>)?.[k], info.metadata);
          expect(value, key).toEqual(entry.value);
        }
      } finally {
        await model.dispose();
      }
    } finally {
      await llama.dispose();
    }
  });

  it('dequantizes every tensor; values match gguf-py', async () => {
    const path = await smolLm2Gguf();
    const h = readGgufHeader(path);
    const byName = new Map(h.tensors.map((t) => [t.name, t]));
    const start = performance.now();
    let values = 0;
    for (const t of h.tensors) values += readGgufTensor(path, t).length;
    console.log(`dequantized ${h.tensors.length} tensors (${values} values) of ${path} in ${(performance.now() - start).toFixed(0)} ms`);
    expect(values).toBe(134515008);

    const embd = readGgufTensor(path, byName.get('token_embd.weight')!);
    expect(embd).toHaveLength(49152 * 576);
    let sum = 0;
    let sq = 0;
    let nonFinite = 0;
    for (const v of embd) {
      if (!Number.isFinite(v)) nonFinite++;
      sum += v;
      sq += v * v;
    }
    expect(nonFinite).toBe(0);
    const mean = sum / embd.length;
    const std = Math.sqrt(sq / embd.length - mean * mean);
    expect(std).toBeGreaterThan(0.01);
    expect(std).toBeLessThan(1);

    // Reference values from gguf-py 0.19.0 (gguf.quants.dequantize), an independent implementation
    const ends = (a: Float32Array) => [a[0], a[1], a[2], a[a.length - 2], a[a.length - 1]];
    expect(ends(embd)).toEqual([
      -0.10654449462890625, 0.032978057861328125, 0.048198699951171875, -0.11989402770996094, -0.0417022705078125,
    ]);
    expect(sum).toBeCloseTo(-15353.04449415207, 4);
    const down = readGgufTensor(path, byName.get('blk.0.ffn_down.weight')!);
    expect(ends(down)).toEqual([-0.330810546875, 0.3460693359375, 0.0753173828125, -0.0901336669921875, -0.181365966796875]);
    expect(down.reduce((a, b) => a + b, 0)).toBeCloseTo(150.63577270507812, 6);
    const norm = readGgufTensor(path, byName.get('output_norm.weight')!);
    expect(ends(norm)).toEqual([1.7578125, 1.8203125, 1.78125, 1.921875, 1.984375]);
  });

  it('reads and writes the file back byte for byte', async () => {
    const path = await smolLm2Gguf();
    const original = readFileSync(path);
    const h = readGgufHeader(path);
    const copy = join(dir, 'smollm2-copy.gguf');
    writeGguf(
      copy,
      h.metadata,
      h.tensors.map((t) => ({
        name: t.name,
        dims: t.dims,
        typeId: GGML_TYPES[t.type],
        raw: original.subarray(t.offset, t.offset + t.byteLength),
      })),
    );
    expect(readFileSync(copy).equals(original)).toBe(true);
    rmSync(copy);
  });
});

describe('errors', () => {
  /** A small valid file to corrupt. */
  function validFile(name: string, tensors: GgufTensorOut[]): { path: string; bytes: Buffer } {
    const path = join(dir, name);
    writeGguf(path, { 'general.architecture': { type: 'string', value: 'llama' } }, tensors);
    return { path, bytes: readFileSync(path) };
  }
  const f32 = (name: string, n: number): GgufTensorOut => ({ name, dims: [n], type: 'F32', data: new Float32Array(n).fill(1) });

  it('names a file that is not GGUF, or missing', () => {
    const path = join(dir, 'not.gguf');
    writeFileSync(path, Buffer.from('GGML and then some more bytes'));
    expectGgufError(() => readGgufHeader(path), /not\.gguf: not a GGUF file \(it does not start with "GGUF"\)/);
    writeFileSync(path, Buffer.from('GG'));
    expectGgufError(() => readGgufHeader(path), /not\.gguf: not a GGUF file/);
    expectGgufError(() => readGgufHeader(join(dir, 'missing.gguf')), /missing\.gguf: cannot open: ENOENT/);
  });

  it('refuses unsupported versions and big-endian files', () => {
    const path = join(dir, 'version.gguf');
    writeFileSync(path, new Bytes().ascii('GGUF').u32(1).u64(0).u64(0).build());
    expectGgufError(() => readGgufHeader(path), /version\.gguf: GGUF version 1 is not supported \(only 2 and 3\)/);
    writeFileSync(path, new Bytes().ascii('GGUF').u32(4).u64(0).u64(0).build());
    expectGgufError(() => readGgufHeader(path), /GGUF version 4 is not supported/);
    writeFileSync(path, new Bytes().ascii('GGUF').u32(0x03000000).u64(0).u64(0).build());
    expectGgufError(() => readGgufHeader(path), /big-endian GGUF files are not supported/);
  });

  it('names a tensor of an unsupported type by its ggml name', () => {
    const { path } = validFile('q4k.gguf', [
      f32('ok', 4),
      { name: 'blk.0.attn_q.weight', dims: [256], typeId: 12, raw: new Uint8Array(144) },
    ]);
    expectGgufError(
      () => readGgufHeader(path),
      /q4k\.gguf: tensor "blk\.0\.attn_q\.weight" has type Q4_K \(12\), which is not supported \(supported: F32, F16, Q4_0, Q4_1, Q8_0, BF16\)/,
    );
    const { path: p2 } = validFile('type99.gguf', [{ name: 'odd', dims: [4], typeId: 99, raw: new Uint8Array(4) }]);
    expectGgufError(() => readGgufHeader(p2), /tensor "odd" has type unknown \(99\)/);
  });

  it('names the tensor whose data is cut off by a truncated file', () => {
    const { path, bytes } = validFile('full.gguf', [f32('first', 8), f32('second', 64)]);
    const full = readGgufHeader(path);
    const second = full.tensors[1];
    const cut = join(dir, 'cut.gguf');
    writeFileSync(cut, bytes.subarray(0, second.offset + 100)); // in the middle of the second tensor's data
    expectGgufError(
      () => readGgufHeader(cut),
      /cut\.gguf: tensor "second" data \(bytes \d+\.\.\d+\) extends past the end of the file \(\d+ bytes\): the file is truncated/,
    );
    expectGgufError(() => readGgufTensor(cut, second), /cut\.gguf: tensor "second" data extends past the end of the file/);
    expect(Array.from(readGgufTensor(cut, full.tensors[0]))).toEqual(new Array(8).fill(1)); // what is there still reads
  });

  it('reports a truncated header with what was being read', () => {
    const { bytes } = validFile('header.gguf', [f32('tensor.name', 4)]);
    const cut = join(dir, 'cut-header.gguf');
    writeFileSync(cut, bytes.subarray(0, 30));
    expectGgufError(
      () => readGgufHeader(cut),
      /cut-header\.gguf: truncated header: the file ends \(30 bytes\) while reading metadata key #0/,
    );
    writeFileSync(cut, bytes.subarray(0, bytes.indexOf('tensor.name') + 6));
    expectGgufError(() => readGgufHeader(cut), /truncated header: the file ends \(\d+ bytes\) while reading tensor info #0/);
    writeFileSync(cut, bytes.subarray(0, bytes.indexOf('tensor.name') + 20));
    expectGgufError(() => readGgufHeader(cut), /while reading tensor info "tensor\.name"/);
  });

  it('refuses duplicate tensor names', () => {
    const { bytes } = validFile('dups.gguf', [f32('x.a', 4), f32('x.b', 4)]);
    const path = join(dir, 'dups-patched.gguf');
    bytes.write('x.a', bytes.indexOf('x.b'), 'latin1'); // rename the second tensor to the first's name
    writeFileSync(path, bytes);
    expectGgufError(() => readGgufHeader(path), /dups-patched\.gguf: duplicate tensor name "x\.a"/);
  });

  it('refuses rows that are not whole blocks', () => {
    const q8 = new Uint8Array(34);
    const { bytes } = validFile('rows.gguf', [{ name: 'q8', dims: [32], typeId: GGML_TYPES.Q8_0, raw: q8 }]);
    bytes.writeBigInt64LE(16n, bytes.indexOf('q8') + 2 + 4); // after the name and n_dims: dims[0] = 16
    const path = join(dir, 'rows-patched.gguf');
    writeFileSync(path, bytes);
    expectGgufError(
      () => readGgufHeader(path),
      /rows-patched\.gguf: tensor "q8" has 16 values per row, not a multiple of the Q8_0 block size 32/,
    );
  });

  it('refuses nested arrays and unknown value types', () => {
    const path = join(dir, 'nested.gguf');
    writeFileSync(path, new Bytes().ascii('GGUF').u32(3).u64(0).u64(1).str('bad.key').u32(9).u32(9).u64(0).build());
    expectGgufError(() => readGgufHeader(path), /nested\.gguf: metadata "bad\.key" is an array of arrays, which is not supported/);
    writeFileSync(path, new Bytes().ascii('GGUF').u32(3).u64(0).u64(1).str('bad.key').u32(13).build());
    expectGgufError(() => readGgufHeader(path), /metadata "bad\.key" has unknown value type 13/);
  });

  it('refuses an absurd array length before allocating it', () => {
    const path = join(dir, 'huge.gguf');
    writeFileSync(path, new Bytes().ascii('GGUF').u32(3).u64(0).u64(1).str('tokens').u32(9).u32(8).u64(1e12).build());
    expectGgufError(() => readGgufHeader(path), /huge\.gguf: truncated header: .* while reading metadata "tokens"/);
  });

  it('no file is left under the name when the writer is given bad data', () => {
    const path = join(dir, 'never.gguf');
    expectGgufError(
      () => writeGguf(path, {}, [{ name: 'x', dims: [4], type: 'F32', data: new Float32Array(3) }]),
      /never\.gguf: tensor "x"/,
    );
    expect(existsSync(path)).toBe(false);
  });
});
