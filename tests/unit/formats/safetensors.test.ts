import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from '../../../formats/gguf';
import { readSafetensorsHeader, readSafetensorsTensor, writeSafetensors } from '../../../formats/safetensors';

const FIXTURES = join(import.meta.dirname, '../../fixtures/pretrained');

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'safetensors-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** A file with a hand-written header (no padding) and `dataBytes` zero bytes of data. */
function rawFile(header: object | string, dataBytes: number, declaredLength?: number): string {
  const json = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(declaredLength ?? json.length));
  const path = join(dir, 'hand.safetensors');
  writeFileSync(path, Buffer.concat([length, json, Buffer.alloc(dataBytes)]));
  return path;
}

/** The raw 16-bit words of a file's only tensor. */
function storedHalves(path: string): number[] {
  const t = readSafetensorsHeader(path).tensors[0];
  const bytes = readFileSync(path).subarray(t.begin, t.end);
  return Array.from({ length: bytes.length / 2 }, (_, i) => bytes.readUInt16LE(2 * i));
}

function values(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.sin(seed + i * 1.7) * 3 ** ((i % 7) - 3);
  return out;
}

describe('safetensors round trip', () => {
  for (const [dtype, narrow, widen] of [
    ['F32', (x: number) => x, (x: number) => x],
    ['F16', f32ToF16, f16ToF32],
    ['BF16', f32ToBf16, bf16ToF32],
  ] as const) {
    it(`writes and reads back ${dtype} tensors and metadata`, () => {
      const path = join(dir, `m-${dtype}.safetensors`);
      const tensors = [
        { name: 'a.weight', shape: [3, 5], data: values(15, 1) },
        { name: 'b.bias', shape: [7], data: values(7, 2) },
        { name: 'scalar', shape: [], data: new Float32Array([0.5]) },
      ];
      writeSafetensors(path, tensors, dtype, { format: 'pt', note: 'ünïcode' });

      const h = readSafetensorsHeader(path);
      expect(h.metadata).toEqual({ format: 'pt', note: 'ünïcode' });
      expect(h.tensors.map((t) => [t.name, t.dtype, t.shape])).toEqual(tensors.map((t) => [t.name, dtype, t.shape]));
      const headerLength = Number(readFileSync(path).readBigUInt64LE(0));
      expect(headerLength % 8).toBe(0); // padded so the data section is 8-byte aligned
      expect(h.tensors[0].begin).toBe(8 + headerLength);
      expect(h.fileSize).toBe(h.tensors[2].end);
      for (const [i, t] of h.tensors.entries()) {
        const expected = Array.from(tensors[i].data, (x) => widen(narrow(Math.fround(x))));
        expect(Array.from(readSafetensorsTensor(path, t))).toEqual(expected);
      }
      expect(readdirSync(dir)).toEqual([`m-${dtype}.safetensors`]); // no temporary file left behind
    });
  }

  it('stores IEEE half and bfloat16 bit patterns', () => {
    const path = join(dir, 'bits.safetensors');
    const data = new Float32Array([1, -2, 65504, 1 / 3]);
    writeSafetensors(path, [{ name: 'h', shape: [4], data }], 'F16');
    expect(storedHalves(path)).toEqual([0x3c00, 0xc000, 0x7bff, 0x3555]);
    writeSafetensors(path, [{ name: 'b', shape: [4], data }], 'BF16');
    expect(storedHalves(path)).toEqual([0x3f80, 0xc000, 0x4780, 0x3eab]);
  });

  it('refuses to write data that does not match its shape', () => {
    expect(() => writeSafetensors(join(dir, 'x.safetensors'), [{ name: 'w', shape: [2, 2], data: new Float32Array(3) }], 'F32')).toThrow(
      /tensor w has 3 values but shape \[2,2\]/,
    );
  });
});

describe('safetensors validation', () => {
  it('rejects a header that lies about a tensor size, naming the tensor', () => {
    const path = rawFile({ 'model.norm.weight': { dtype: 'F32', shape: [4, 4], data_offsets: [0, 32] } }, 64);
    expect(() => readSafetensorsHeader(path)).toThrow(
      /hand\.safetensors: tensor model\.norm\.weight: data_offsets \[0, 32\] span 32 bytes but F32 \[4,4\] needs 64/,
    );
  });

  it('names an unsupported dtype when the tensor is read, listing the supported ones', () => {
    const path = rawFile({ position_ids: { dtype: 'I64', shape: [2], data_offsets: [0, 16] } }, 16);
    const [t] = readSafetensorsHeader(path).tensors; // a valid file: only reading it as floats is refused
    expect(() => readSafetensorsTensor(path, t)).toThrow(/tensor position_ids has dtype I64; supported: F32, F16, BF16/);
  });

  it('rejects an unknown dtype in the header', () => {
    const path = rawFile({ w: { dtype: 'Q4_K', shape: [2], data_offsets: [0, 2] } }, 2);
    expect(() => readSafetensorsHeader(path)).toThrow(/tensor w: unknown dtype "Q4_K"/);
  });

  it('rejects a header length past the end of the file, or absurdly large', () => {
    expect(() => readSafetensorsHeader(rawFile({}, 0, 1000))).toThrow(/header length 1000 is impossible for a file of 10 bytes/);
    expect(() => readSafetensorsHeader(rawFile({}, 0, 2 ** 40))).toThrow(/header length 1099511627776 is impossible/);
    writeFileSync(join(dir, 'tiny.safetensors'), Buffer.alloc(5));
    expect(() => readSafetensorsHeader(join(dir, 'tiny.safetensors'))).toThrow(/5 bytes is too short/);
  });

  it('rejects a header that is not JSON', () => {
    expect(() => readSafetensorsHeader(rawFile('{"w": {"dtype": ', 0))).toThrow(/hand\.safetensors: header is not JSON/);
  });

  it('rejects offsets outside the data section', () => {
    const path = rawFile({ w: { dtype: 'F16', shape: [8], data_offsets: [4, 20] } }, 16);
    expect(() => readSafetensorsHeader(path)).toThrow(/tensor w: data_offsets \[4, 20\] run past the data section \(16 bytes\)/);
  });

  it('rejects overlapping tensors', () => {
    const path = rawFile(
      { a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] }, b: { dtype: 'F32', shape: [2], data_offsets: [8, 16] } },
      16,
    );
    expect(() => readSafetensorsHeader(path)).toThrow(/tensor b overlaps tensor a/);
  });
});

describe('files written by Python safetensors (tests/fixtures/pretrained)', () => {
  // make_tiny.py records, for a few tensors, the first values and the sum as PyTorch sees them.
  for (const [fixture, file, dtype] of [
    ['llama-tied', 'model.safetensors', 'F32'],
    ['qwen2-bf16', 'model.safetensors', 'BF16'],
  ]) {
    it(`${fixture}: ${dtype} tensors decode to PyTorch's values`, () => {
      const path = join(FIXTURES, fixture, file);
      const reference = JSON.parse(readFileSync(join(FIXTURES, fixture, 'reference.json'), 'utf8')) as {
        probes: { name: string; shape: number[]; first: number[]; sum: number }[];
      };
      const h = readSafetensorsHeader(path);
      expect(h.metadata).toEqual({ format: 'pt' });
      expect(reference.probes.length).toBeGreaterThanOrEqual(3);
      for (const p of reference.probes) {
        const t = h.tensors.find((x) => x.name === p.name)!;
        expect(t.dtype).toBe(dtype);
        expect(t.shape).toEqual(p.shape);
        const data = readSafetensorsTensor(path, t);
        expect(Array.from(data.subarray(0, 8))).toEqual(p.first);
        expect(data.reduce((s, x) => s + x, 0)).toBeCloseTo(p.sum, 8);
      }
    });
  }
});
