import { describe, expect, it } from 'vitest';
import { BOS } from '../../../model/tokenizer';
import { Transformer } from '../../../model/transformer';
import { rlConfig, rolloutShards } from '../../../rl/config';
import { sampleRollouts, type RolloutBatch } from '../../../rl/rollout';
import { CampaignConfigSchema } from '../../../config/campaign';
import { Prng } from '../../../util/prng';
import { expectNoLeak, tinyConfig, useBackend } from '../model/helpers';

useBackend();

describe('rollouts', () => {
  const model = new Transformer(tinyConfig({ initStd: 0.5, contextLength: 40 }), new Prng(5));
  // Ragged prompts: the left padding of a sampler call differs with its rows.
  const prompts = [
    [BOS, 5, 6],
    [BOS, 7],
    [BOS, 8, 9, 10, 11],
    [BOS, 12, 13],
  ];
  const batch: RolloutBatch = {
    prompts,
    first: 0,
    samplesPerPrompt: 3,
    stepSeed: 1234,
    sampleBatch: 6,
    sampling: { maxNewTokens: 12, temperature: 1.3, topP: 1, minP: 0 },
  };
  const cfg = { promptsPerStep: 4, samplesPerPrompt: 3, sampleBatch: 6 };
  const shardsOf = (shardPrompts: number) => rolloutShards({ ...cfg, rollout: { shardPrompts } });
  const sampleShards = async (shards: { first: number; count: number }[], order = shards.map((_, i) => i)) => {
    const parts = new Array(shards.length);
    for (const i of order) {
      const { first, count } = shards[i];
      parts[i] = await sampleRollouts(model, { ...batch, first, prompts: prompts.slice(first, first + count) });
    }
    return parts.flat();
  };

  it('shards of whole sampler calls, in any order, give the same samples bit for bit as one process', async () => {
    const whole = await expectNoLeak(() => sampleRollouts(model, batch));
    expect(whole).toHaveLength(12);
    expect(shardsOf(2)).toEqual([
      { first: 0, count: 2 },
      { first: 2, count: 2 },
    ]);
    expect(await sampleShards(shardsOf(2), [1, 0])).toEqual(whole);
    expect(await sampleShards(shardsOf(4))).toEqual(whole);
    // The rows differ from each other (own streams), and a different step seed samples other responses.
    expect(new Set(whole.map((s) => s.tokens.join(','))).size).toBeGreaterThan(6);
    const other = await sampleRollouts(model, { ...batch, stepSeed: 99 });
    expect(other.map((s) => s.tokens)).not.toEqual(whole.map((s) => s.tokens));
  });

  it('the shard size defaults to whole sampler calls; a shard that splits one is refused, naming the field', () => {
    expect(rolloutShards(rlConfig({ ...cfg, rollout: { mode: 'workers' } }))).toEqual(shardsOf(2));
    expect(rolloutShards(rlConfig({ promptsPerStep: 5, samplesPerPrompt: 4, sampleBatch: 8 }))).toEqual([
      { first: 0, count: 2 },
      { first: 2, count: 2 },
      { first: 4, count: 1 },
    ]);
    const r = CampaignConfigSchema.safeParse({ rl: { ...cfg, rollout: { mode: 'workers', shardPrompts: 1 } } });
    expect(r.success).toBe(false);
    const issue = r.error!.issues.find((i) => i.path.join('.') === 'rl.rollout.shardPrompts');
    expect(issue?.message).toContain('must be a multiple of sampleBatch (6)');
    expect(issue?.message).toContain('try 2');
  });
});
