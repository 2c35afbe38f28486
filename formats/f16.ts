/**
 * IEEE half precision (f16) and bfloat16 (bf16) conversions, as 16-bit patterns held in plain numbers.
 * float32 → 16 bit rounds to nearest, ties to even (what numpy, PyTorch and ggml do), so a value
 * written by us and one written by a Python exporter are bit-identical.
 */

// One 4-byte scratch slot, viewed both ways, to get at a float32's bits without allocating.
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float32 bits of x (x is first rounded to float32, like storing it in a Float32Array). */
function bitsOf(x: number): number {
  f32[0] = x;
  return u32[0];
}

/** f16 bit pattern → value. */
export function f16ToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24; // zero and subnormals: no implicit leading 1
  if (exp === 31) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** value → f16 bit pattern, round to nearest even; overflow gives ±inf, NaN stays NaN. */
export function f32ToF16(x: number): number {
  const b = bitsOf(x);
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  const mant = b & 0x7fffff;
  if (exp === 0xff) return mant ? sign | 0x7e00 | (mant >>> 13) : sign | 0x7c00; // NaN (kept quiet) or inf
  const e = exp - 127 + 15; // the exponent re-biased for f16
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal f16 (or zero): shift the full 24-bit significand down to units of 2^-24.
    const shift = 14 - e;
    if (shift > 24) return sign; // below half the smallest subnormal
    return sign | roundShift(mant | 0x800000, shift);
  }
  // Normal: drop 13 mantissa bits. A carry out of the mantissa correctly bumps the exponent (up to inf).
  return sign | roundShift((e << 23) | mant, 13);
}

/** v >> shift, rounded to nearest with ties to even. */
function roundShift(v: number, shift: number): number {
  const kept = v >>> shift;
  const rest = v & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  return rest > half || (rest === half && kept & 1) ? kept + 1 : kept;
}

/** bf16 bit pattern → value: bf16 is the top half of a float32. */
export function bf16ToF32(h: number): number {
  u32[0] = (h & 0xffff) << 16;
  return f32[0];
}

/** value → bf16 bit pattern, round to nearest even; NaN stays NaN. */
export function f32ToBf16(x: number): number {
  const b = bitsOf(x);
  if ((b & 0x7f800000) === 0x7f800000 && b & 0x7fffff) return (b >>> 16) | 0x40; // NaN: keep it NaN after truncation
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

/** All 65536 f16 patterns decoded once: dequantization is then one table lookup per value. */
export const F16_TABLE: Float32Array = (() => {
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) t[h] = f16ToF32(h);
  return t;
})();
