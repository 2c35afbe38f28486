/**
 * How campaign activities build a pretrained policy (activities/policies.ts): the base read only
 * within the worker's grants and only with the pinned content hash, a fresh LoRA policy computing
 * the base's function exactly, and a checkpoint refused on another base.
 */
import * as tf from '@tensorflow/tfjs';
import type { S3Client } from '@aws-sdk/client-s3';
import { resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Policies } from '../../../activities/policies';
import type { CampaignConfig } from '../../../config/campaign';
import { loadGrants } from '../../../util/grants';
import { resolveConfig } from '../../../config/presets';
import { loadPretrained } from '../../../formats/pretrained';
import { contentHash } from '../../../formats/source';
import { Llama } from '../../../model/llama';
import type { Policy } from '../../../model/policy';
import { useBackend } from '../model/helpers';

useBackend();

const DIR = resolve('tests/fixtures/pretrained');
const BASE = `${DIR}/llama-tied`;
let sha256: string;
beforeAll(async () => {
  sha256 = await contentHash(BASE);
});

const config = (base: { uri: string; sha256: string }, lora: object | null = { rank: 2, targets: ['q', 'v'] }): CampaignConfig =>
  resolveConfig({ preset: 'smoke', overrides: { model: { base, ...(lora && { lora }) }, eval: { scaling: { enabled: false } } } });
const policies = (dirs: string[] = [DIR]) =>
  new Policies({ grants: loadGrants({ 'allow-model-dir': dirs }, {}), checkpointBucket: 't1-checkpoints' }, {} as S3Client);

function logits(m: Policy | Llama, tokens: number[]): Float32Array {
  return tf.tidy(() => m.forward(tf.tensor2d([tokens], [1, tokens.length], 'int32')).dataSync() as Float32Array);
}

describe('pretrained policies for campaign activities', () => {
  it('a fresh LoRA policy is the base exactly; a full one trains every weight; both speak the chat format', async () => {
    const p = policies();
    const lora = await p.fresh(config({ uri: BASE, sha256 }), 1);
    const full = await p.fresh(config({ uri: BASE, sha256 }, null), 1);
    const base = loadPretrained(BASE);
    const plain = new Llama(base.config, base.weights);
    // The system turn alone outgrows the fixture's 128 positions: its first 100 tokens.
    const tokens = lora.format.encodePrompt('2 + 3').slice(0, 100);
    expect(logits(lora, tokens)).toEqual(logits(plain, tokens));
    expect(logits(full, tokens)).toEqual(logits(plain, tokens));
    expect(lora.names.every((n) => /\.lora_[ab]$/.test(n))).toBe(true);
    expect(full.paramCount()).toBe(plain.paramCount());
    expect(lora.origin).toEqual({ base: { uri: BASE, sha256 }, lora: { rank: 2, alpha: 8, dropout: 0, targets: ['q', 'v'] } });
    for (const m of [lora, full, plain]) m.dispose();
  });

  it('reads a base only under a granted directory, only with the pinned hash, on every call', async () => {
    const p = policies([`${DIR}/qwen2`]);
    await expect(p.base(config({ uri: BASE, sha256 }))).rejects.toThrow(
      /^model\.base\.uri: .*llama-tied is not an existing file or directory under a model directory granted to this worker/,
    );
    const granted = policies();
    await expect(granted.base(config({ uri: BASE, sha256: 'f'.repeat(64) }))).rejects.toThrow(
      `model.base: ${BASE}: content sha256 is ${sha256}, expected ${'f'.repeat(64)}`,
    );
    expect((await granted.base(config({ uri: BASE, sha256 })))!.ref.sha256).toBe(sha256);
    // Loaded once, the bytes are still not handed to a config whose URI the worker does not grant.
    await expect(granted.base(config({ uri: '/etc/passwd', sha256 }))).rejects.toThrow(/is not an existing file or directory under/);
  });

  it('refuses a checkpoint trained from another base, naming both', async () => {
    const p = policies();
    const cfg = config({ uri: BASE, sha256 });
    const policy = await p.fresh(cfg, 1);
    const state = {
      config: policy.config as Llama['config'],
      step: 0,
      prng: [1, 2, 3, 4] as [number, number, number, number],
      cursor: null,
      weights: policy.getWeights(),
      optimizer: { t: 0, m: {}, v: {} },
      extra: { origin: { ...policy.origin!, base: { uri: 'elsewhere.gguf', sha256: 'e'.repeat(64) } } },
    };
    await expect(p.fromState(cfg, state)).rejects.toThrow(
      `model.base: the checkpoint was trained from base eeeeeeeeeeee (elsewhere.gguf), this config names ${sha256.slice(0, 12)}`,
    );
    const back = await p.fromState(cfg, { ...state, extra: { origin: policy.origin } });
    expect(back.getWeights()).toEqual(policy.getWeights());
    policy.dispose();
    back.dispose();
  });
});
