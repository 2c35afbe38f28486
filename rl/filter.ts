/**
 * The paper's optional difficulty filter, run once before RL: sample `samples` responses per
 * candidate prompt with the SFT model and keep the prompts whose pass rate is above 0 and at most
 * `maxPassRate` (too-easy and unsolved prompts teach nothing: all their samples score alike). Run on the first `candidates` problems of the
 * RL pool's stream, the kept indices are stream positions: the pool's `kept` list, which the
 * orchestrator stores with the campaign.
 */
import { generate } from '../model/sample';
import type { Policy } from '../model/policy';
import type { Problem } from '../tasks/types';
import type { Prng } from '../util/prng';
import type { RlConfig } from './config';
import type { JsonlDataset } from '../tasks/jsonl';
import { PromptPool, type PromptSource } from './prompts';
import { judge } from './reward';

export interface FilterResult {
  /** Indices into the candidates, ascending. */
  kept: number[];
  /** Pass rate of every candidate. */
  passRates: number[];
}

/** Samples with the RL step's sampling settings (temperature, top-p, min-p, length limit). */
export async function difficultyFilter(
  model: Policy,
  candidates: readonly Problem[],
  cfg: RlConfig,
  rng: Prng,
  onProgress?: (done: number, total: number) => unknown,
): Promise<FilterResult> {
  const { samples: n, maxPassRate } = cfg.filter;
  const opts = { maxNewTokens: cfg.maxNewTokens, temperature: cfg.temperature, topP: cfg.topP, minP: cfg.minP };
  const perCall = Math.max(1, Math.floor(cfg.sampleBatch / n));
  const tokenizer = model.format;
  const passRates: number[] = [];
  for (let start = 0; start < candidates.length; start += perCall) {
    const chunk = candidates.slice(start, start + perCall);
    const outs = await generate(
      model,
      chunk.flatMap((p) => Array.from({ length: n }, () => tokenizer.encodePrompt(p.prompt))),
      opts,
      rng,
    );
    chunk.forEach((p, i) => {
      const right = outs.slice(i * n, (i + 1) * n).filter((o) => judge(p, o.tokens, cfg.garbage, tokenizer).correct).length;
      passRates.push(right / n);
    });
    await onProgress?.(passRates.length, candidates.length);
  }
  // A prompt the model never solves gives every sample the same reward: no signal, only cost.
  return { kept: passRates.flatMap((r, i) => (r > 0 && r <= maxPassRate ? [i] : [])), passRates };
}

/** The filter over the first `filter.candidates` stream positions of the RL pool: `kept` are the pool's `kept` positions. */
export async function filterPool(
  model: Policy,
  source: PromptSource,
  cfg: RlConfig,
  rng: Prng,
  onProgress?: (done: number, total: number) => unknown,
  /** Task jsonl: its loaded file. */
  file?: JsonlDataset,
): Promise<FilterResult> {
  const pool = new PromptPool({ ...source, kept: undefined }, file);
  const candidates = Array.from({ length: cfg.filter.candidates }, (_, i) => pool.atStream(i));
  return difficultyFilter(model, candidates, cfg, rng, onProgress);
}
