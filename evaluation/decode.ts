/**
 * Batched decoding where every row draws from its own Prng, so a (problem, sample) stream gives
 * the same tokens in any batch and under any budget: that lets a budget sweep cut the very samples
 * the untruncated run drew.
 */
import { generate, type SampleOptions } from '../model/sample';
import type { Decodable, Policy } from '../model/policy';
import type { Prng } from '../util/prng';

/** Continues each prefix (KV-cache decoding, `generate`'s stopping rules); row b draws from rngs[b]. */
export async function decodeRows(
  model: Policy | Decodable,
  prefixes: number[][],
  rngs: readonly Prng[],
  opts: SampleOptions,
): Promise<number[][]> {
  return (await generate(model, prefixes, opts, rngs)).map((s) => s.tokens);
}

/** Rows decoded so far in a phase ('sampling', 'budget 64', ...). */
export type Progress = (phase: string, done: number, total: number) => void | Promise<void>;

/** decodeRows over any number of rows, batchSize at a time. */
export async function decodeAll(
  model: Policy | Decodable,
  prefixes: number[][],
  rngs: readonly Prng[],
  opts: SampleOptions & { batchSize: number; phase?: string; onProgress?: Progress },
): Promise<number[][]> {
  const out: number[][] = [];
  for (let i = 0; i < prefixes.length; i += opts.batchSize) {
    out.push(...(await decodeRows(model, prefixes.slice(i, i + opts.batchSize), rngs.slice(i, i + opts.batchSize), opts)));
    await opts.onProgress?.(opts.phase ?? 'decoding', out.length, prefixes.length);
  }
  return out;
}
