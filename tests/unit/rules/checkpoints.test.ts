import { describe, expect, it } from 'vitest';
import type { CampaignConfig } from '../../../config/campaign';
import { resolveConfig } from '../../../config/presets';
import {
  anchorId,
  anchorLabel,
  datasetHash,
  datasetId,
  EVAL_CODE_VERSION,
  intraId,
  intraPrefix,
  promptFilterHash,
  promptFilterId,
  rlEpochHash,
  rlRun,
  runId,
  scalingCacheKey,
  sftHash,
  SFT_RUN,
  sweepCacheKey,
  type EvalCacheContext,
} from '../../../rules/checkpoints';
import { hashOf } from '../../../util/hash';

const smoke = (overrides: Record<string, unknown> = {}): CampaignConfig => resolveConfig({ preset: 'smoke', overrides });
const A = { sha256: 'a'.repeat(64) };
const B = { sha256: 'b'.repeat(64) };
/** A "hash" that shows what went into it. */
const shown = (v: unknown) => JSON.stringify(v);

describe('checkpoint ids', () => {
  it('name every checkpoint of a campaign as recorded campaigns have them', () => {
    expect(datasetId('c-1')).toBe('c-1/dataset');
    expect(runId('c-1', SFT_RUN)).toBe('c-1/sft');
    expect(promptFilterId('c-1')).toBe('c-1/prompt-filter');
    expect(rlRun(2)).toBe('rl-e0002');
    expect(rlRun(12345)).toBe('rl-e12345');
    expect(runId('c-1', rlRun(17))).toBe('c-1/rl-e0017');
    expect(anchorId('c-1', anchorLabel(3), '0123456789abcdef'.repeat(4))).toBe('c-1/anchor-e3-0123456789ab');
  });

  it('intra checkpoints: the run, then the step zero-padded to 6, so ids sort by step', () => {
    expect(intraPrefix('c-1', 'sft')).toBe('c-1/sft-s');
    expect(intraId('c-1', 'sft', 5)).toBe('c-1/sft-s000005');
    expect(intraId('c-1', rlRun(1), 2)).toBe('c-1/rl-e0001-s000002');
    const ids = [10, 9, 100].map((s) => intraId('c', 'sft', s));
    expect([...ids].sort()).toEqual([intraId('c', 'sft', 9), intraId('c', 'sft', 10), intraId('c', 'sft', 100)]);
  });
});

describe('config hashes', () => {
  // Recorded from the recipes as they were written inline in activities/campaign.ts: a change
  // renames nothing but makes every retry and resumed run start over, and changes the smoke sha256.
  it('give the recorded values for the smoke preset', () => {
    const c = smoke();
    expect(datasetHash(hashOf, c)).toBe('2bf3fa54b291e4a45da973eb8b8f58f0d767261101f67a8a67b7a8e8cfacf3b2');
    expect(sftHash(hashOf, c, A, B)).toBe('76a549e03cb7a9abada50cd090fd5aa735234f5a4f6a6cb04785d195ae1789a8');
    expect(sftHash(hashOf, c, A, null)).toBe('d1fec32d23aa30d11ce5db58bcdc27eeb9e6103556a7838b65d16cdc5e3d1519');
    expect(promptFilterHash(hashOf, c, A)).toBe('c038a31abe736811940df553f337b3d3622c008cd44344e5d4464e6a3b4c4e5f');
    expect(rlEpochHash(hashOf, c, A, B)).toBe('3a12be02be4960977a0292fa5c0297fdc6ba88e35f0339eadfd591fc4e182932');
  });

  it('SFT: model, SFT settings, seed, dataset and warm start; not RL or evaluation settings', () => {
    const c = smoke();
    expect(JSON.parse(sftHash(shown, c, A, null))).toEqual({ model: c.model, sft: c.sft, seed: c.seed, dataset: A.sha256, init: null });
    const h = (x: CampaignConfig) => sftHash(hashOf, x, A, null);
    expect(h(smoke({ sft: { lr: 1e-3 } }))).not.toBe(h(c));
    expect(h(smoke({ seed: 7 }))).not.toBe(h(c));
    expect(h(smoke({ rl: { lr: 1e-3 } }))).toBe(h(c));
    expect(h(smoke({ eval: { problems: 3 } }))).toBe(h(c));
  });

  it('RL epoch: the RL settings that change bits, not where rollouts run', () => {
    const c = smoke();
    const h = (x: CampaignConfig) => rlEpochHash(hashOf, x, A, B);
    expect(h(smoke({ rl: { lr: 1e-3 } }))).not.toBe(h(c));
    expect(rlEpochHash(hashOf, c, A, A)).not.toBe(h(c));
    expect(h(smoke({ rl: { rollout: { mode: 'workers' } } }))).toBe(h(c));
    expect(h(smoke({ sft: { lr: 1e-3 } }))).toBe(h(c));
  });

  it('prompt filter: its settings and sampling, not the RL learning rate', () => {
    const c = smoke();
    const h = (x: CampaignConfig) => promptFilterHash(hashOf, x, A);
    expect(Object.keys(JSON.parse(promptFilterHash(shown, c, A))).sort()).toEqual(
      ['filter', 'garbage', 'maxNewTokens', 'minP', 'policy', 'seed', 'source', 'temperature', 'topP'].sort(),
    );
    expect(h(smoke({ rl: { temperature: 0.7 } }))).not.toBe(h(c));
    expect(h(smoke({ rl: { lr: 1e-3 } }))).toBe(h(c));
  });
});

describe('evaluation-cache keys', () => {
  const ctx: EvalCacheContext = { model: 'f'.repeat(64), backend: 'tensorflow', streams: 2 };
  const sweep = (c: CampaignConfig, x: Partial<EvalCacheContext> = {}) => sweepCacheKey(hashOf, c, { ...ctx, ...x });
  const point = (c: CampaignConfig, budget: number | null, x: Partial<EvalCacheContext> = {}) =>
    scalingCacheKey(hashOf, c, budget, { ...ctx, ...x });

  it('live under the model sha256, and hold the backend and the evaluation code version', () => {
    const c = smoke();
    expect(sweep(c)).toMatch(new RegExp(`^${'f'.repeat(64)}/[0-9a-f]{64}\\.json$`));
    const inSweep = JSON.parse(sweepCacheKey(shown, c, ctx).slice(65, -'.json'.length));
    expect(inSweep).toMatchObject({ kind: 'sweep', backend: 'tensorflow', code: EVAL_CODE_VERSION, streams: 2 });
    const inPoint = JSON.parse(scalingCacheKey(shown, c, 16, ctx).slice(65, -'.json'.length));
    expect(inPoint).toMatchObject({ kind: 'scaling', budget: 16, backend: 'tensorflow', code: EVAL_CODE_VERSION, streams: 2 });
  });

  it('change with the model, the backend, the streams and the evaluation settings', () => {
    const c = smoke();
    for (const key of [sweep, (x: CampaignConfig, o?: Partial<EvalCacheContext>) => point(x, 16, o)]) {
      expect(key(c, { model: 'e'.repeat(64) })).not.toBe(key(c));
      expect(key(c, { backend: 'wasm' })).not.toBe(key(c));
      expect(key(c, { streams: 3 })).not.toBe(key(c));
      expect(key(smoke({ eval: { maxNewTokens: 170 } }))).not.toBe(key(c));
      expect(key(smoke({ rl: { garbage: { ngram: 5 } } }))).not.toBe(key(c));
    }
    expect(sweep(smoke({ eval: { temperatures: [0.3] } }))).not.toBe(sweep(c));
    expect(point(c, 32)).not.toBe(point(c, 16));
    expect(point(c, null)).not.toBe(point(c, 16));
    expect(point(smoke({ eval: { scaling: { samples: 3 } } }), 16)).not.toBe(point(c, 16));
  });

  it('do not change with what changes no result: batch size, training settings, the other evaluation', () => {
    const c = smoke();
    expect(sweep(smoke({ eval: { batchSize: 3 } }))).toBe(sweep(c));
    expect(sweep(smoke({ eval: { scaling: { samples: 3 } } }))).toBe(sweep(c));
    expect(sweep(smoke({ seed: 7, rl: { lr: 1e-3 }, sft: { lr: 1e-3 } }))).toBe(sweep(c));
    expect(point(smoke({ eval: { batchSize: 3 } }), 16)).toBe(point(c, 16));
    expect(point(smoke({ eval: { temperatures: [0.3] } }), 16)).toBe(point(c, 16));
    expect(point(smoke({ seed: 7, rl: { lr: 1e-3 } }), 16)).toBe(point(c, 16));
  });

  it('sweeps and scaling points never share a key', () => {
    const c = smoke();
    expect(new Set([sweep(c), point(c, null), point(c, 16)]).size).toBe(3);
  });
});
