/**
 * What names a campaign's checkpoints and caches, in one pure module (no tfjs, no Temporal, no Node
 * built-ins): checkpoint and run ids, the config-hash recipes that decide which stored work a retry
 * resumes from, and the evaluation-cache keys. Ids and hashes of existing recipes are frozen: a
 * change here renames every checkpoint and makes every retry start over.
 *
 * The recipes say what goes into a hash; the hash itself (sha256 of canonical JSON, util/hash's
 * `hashOf`, which needs node:crypto) is the caller's `hash` argument, so this module stays importable
 * from anywhere.
 */
import type { CampaignConfig } from '../config/campaign';
import { resultConfig } from '../rl/config';
import { datasetSpec, promptSource } from './campaign';

/** sha256 of canonical JSON (keys sorted at every level): util/hash's `hashOf`. */
export type Hash = (value: unknown) => string;

/** What a recipe reads of a checkpoint reference: its content digest. */
interface Digest {
  sha256: string;
}

// ---- ids -------------------------------------------------------------------------------------

/** The synthesized SFT dataset. */
export const datasetId = (campaignId: string) => `${campaignId}/dataset`;

/** The SFT run, and its result checkpoint. */
export const SFT_RUN = 'sft';

/** RL epoch `epoch`'s run (1-based; zero-padded to 4 so ids sort by epoch), e.g. `rl-e0002`. */
export const rlRun = (epoch: number) => `rl-e${String(epoch).padStart(4, '0')}`;

/** A run's result checkpoint: `<campaign>/<run>`. */
export const runId = (campaignId: string, run: string) => `${campaignId}/${run}`;

/** rl.filter's kept prompts. */
export const promptFilterId = (campaignId: string) => `${campaignId}/prompt-filter`;

/** An anchor checkpoint: labelled (e.g. `e3`) and named by the first 12 hex of its weights' sha256. */
export const anchorId = (campaignId: string, label: string, weightsSha256: string) =>
  `${campaignId}/anchor-${label}-${weightsSha256.slice(0, 12)}`;

/** The label of the anchor taken after RL epoch `epoch`. */
export const anchorLabel = (epoch: number) => `e${epoch}`;

/** Intra checkpoints of a run share the id prefix `<campaign>/<run>-s`; steps zero-padded to 6 sort by name. */
export const intraPrefix = (campaignId: string, run: string) => `${campaignId}/${run}-s`;
export const intraId = (campaignId: string, run: string, step: number) => `${intraPrefix(campaignId, run)}${String(step).padStart(6, '0')}`;

// ---- config hashes: what a result depends on besides its parent ------------------------------

/** The dataset: its spec alone (the teacher, the problems, the seed). */
export function datasetHash(hash: Hash, config: CampaignConfig): string {
  return hash(datasetSpec(config));
}

/** SFT: the model and SFT settings, the seed, and the dataset and warm-start checkpoint it reads. */
export function sftHash(hash: Hash, config: CampaignConfig, dataset: Digest, init: Digest | null): string {
  return hash({ model: config.model, sft: config.sft, seed: config.seed, dataset: dataset.sha256, init: init?.sha256 ?? null });
}

/** The prompt filter: its settings, how it samples, the RL pool, the seed and the policy it samples. */
export function promptFilterHash(hash: Hash, config: CampaignConfig, policy: Digest): string {
  const { filter, maxNewTokens, temperature, topP, minP, garbage } = config.rl;
  return hash({
    filter,
    maxNewTokens,
    temperature,
    topP,
    minP,
    garbage,
    source: promptSource(config),
    seed: config.seed,
    policy: policy.sha256,
  });
}

/** An RL epoch: the RL settings that change bits (not where rollouts run), seed, task, policy and anchor. */
export function rlEpochHash(hash: Hash, config: CampaignConfig, policy: Digest, anchor: Digest): string {
  return hash({ rl: resultConfig(config.rl), seed: config.seed, task: config.task, policy: policy.sha256, anchor: anchor.sha256 });
}

// ---- evaluation caches ------------------------------------------------------------------------

/**
 * The evaluation code's version, part of every evaluation-cache key: bump it when a change to
 * evaluation (sampling, answer checking, metrics, what a stored record holds) would make a cached
 * result differ from a fresh one, so that no result of the old code is served. The backend is in
 * the key too: tfjs backends do not give the same bits.
 */
export const EVAL_CODE_VERSION = 1;

/** What every cached evaluation depends on besides its own settings. */
export interface EvalCacheContext {
  /** The content digest of the model evaluated (a checkpoint's, or a pretrained base's). */
  model: string;
  /** The tfjs backend that computes it. */
  backend: string;
  /** Sampling streams per problem (evaluation/evaluate's SAMPLE_STREAMS). */
  streams: number;
}

/** Where a cached evaluation lives under the eval-cache prefix: `<model sha256>/<settings hash>.json`. */
function evalCacheKey(hash: Hash, ctx: EvalCacheContext, settings: Record<string, unknown>): string {
  return `${ctx.model}/${hash({ ...settings, streams: ctx.streams, backend: ctx.backend, code: EVAL_CODE_VERSION })}.json`;
}

/** The held-out sweep (evaluate): every eval setting but the scaling section and the batch size (which change no result). */
export function sweepCacheKey(hash: Hash, config: CampaignConfig, ctx: EvalCacheContext): string {
  const { scaling: _, batchSize: __, ...e } = config.eval;
  return evalCacheKey(hash, ctx, { kind: 'sweep', task: config.task, eval: e, garbage: config.rl.garbage });
}

/** One inference-scaling point: the scaling settings and the reasoning budget (null: untruncated). */
export function scalingCacheKey(hash: Hash, config: CampaignConfig, budget: number | null, ctx: EvalCacheContext): string {
  const s = config.eval.scaling;
  return evalCacheKey(hash, ctx, {
    kind: 'scaling',
    task: config.task,
    seed: config.eval.seed,
    problems: s.problems,
    samples: s.samples,
    temperature: s.temperature,
    maxNewTokens: config.eval.maxNewTokens,
    answerTokens: s.answerTokens,
    garbage: config.rl.garbage,
    budget,
    // 2: points carry per-problem counts and the median reasoning length.
    record: 2,
  });
}
