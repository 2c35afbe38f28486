/**
 * Stable 64-bit content hash (two 32-bit multiply-xorshift lanes, cyrb53-style). Pure arithmetic,
 * no node:crypto, so problem ids and splits compute identically in workers and workflow sandboxes.
 */
function lanes(text: string): [number, number] {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return [h1 >>> 0, h2 >>> 0];
}

/** 16 lowercase hex characters. */
export function hash64(text: string): string {
  const [a, b] = lanes(text);
  return a.toString(16).padStart(8, '0') + b.toString(16).padStart(8, '0');
}

/** Uniform in [0, 1) from 53 bits of the hash: used to assign splits and pools by content. */
export function unitHash(text: string): number {
  const [a, b] = lanes(text);
  return ((a >>> 5) * 67108864 + (b >>> 6)) / 9007199254740992;
}
