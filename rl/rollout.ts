/**
 * Rollouts: the K responses per prompt of one RL step. Every row (prompt, k) draws from its own
 * stream, Prng.stream(stepSeed, "rollout <prompt> <k>"), and rows are batched in sampler calls of
 * sampleBatch rows counted from the shard's start; shards are whole sampler calls (rl.rollout).
 * So the samples are the same bits whether one process samples the step or any number of rollout
 * workers sample its shards, in any order, retried or not.
 */
import { generate, type Sample, type SampleOptions } from '../model/sample';
import type { Policy } from '../model/policy';
import { Prng } from '../util/prng';

export interface RolloutBatch {
  /** Token ids of the prompts, each sampled samplesPerPrompt times. */
  prompts: number[][];
  /** Index of prompts[0] among the step's prompts (names the rows' streams). */
  first: number;
  samplesPerPrompt: number;
  stepSeed: number;
  sampleBatch: number;
  sampling: Required<Pick<SampleOptions, 'maxNewTokens' | 'temperature' | 'topP' | 'minP'>>;
}

/** Samples for a batch's rows in order: prompt 0's K samples, then prompt 1's, ... */
export type Rollouts = (batch: RolloutBatch) => Promise<Sample[]>;

export function rowStream(stepSeed: number, prompt: number, k: number): Prng {
  return Prng.stream(stepSeed, `rollout ${prompt} ${k}`);
}

/** Samples a batch in this process. */
export async function sampleRollouts(model: Policy, b: RolloutBatch): Promise<Sample[]> {
  const K = b.samplesPerPrompt;
  const rows = b.prompts.flatMap((ids, p) => Array.from({ length: K }, (_, k) => ({ ids, rng: rowStream(b.stepSeed, b.first + p, k) })));
  const out: Sample[] = [];
  for (let i = 0; i < rows.length; i += b.sampleBatch) {
    const part = rows.slice(i, i + b.sampleBatch);
    out.push(
      ...(await generate(
        model,
        part.map((r) => r.ids),
        b.sampling,
        part.map((r) => r.rng),
      )),
    );
  }
  return out;
}

/** The in-process sampler of a policy. */
export const localRollouts =
  (model: Policy): Rollouts =>
  (b) =>
    sampleRollouts(model, b);
