import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CampaignConfigSchema } from '../../../config/campaign';
import { initBackend } from '../../../model/backend';
import { BOS } from '../../../model/tokenizer';
import { Transformer } from '../../../model/transformer';
import { rlConfig, rolloutShards } from '../../../rl/config';
import { responseLogProbs, scoringChunks } from '../../../rl/loss';
import { sampleRollouts, type RolloutBatch } from '../../../rl/rollout';
import { SamplerPool } from '../../../rl/sampler-pool';
import { Prng } from '../../../util/prng';
import { tinyConfig } from '../model/helpers';

// The backend this process would train on: tfjs-node where it loads, where the children's single
// TensorFlow thread against this process's default threads is what is checked; else wasm.
let backend: string;
let pool: SamplerPool;
beforeAll(async () => {
  backend = (await initBackend()).name;
  pool = new SamplerPool(2, backend);
});
afterAll(() => pool.close());

const children = (p: SamplerPool) => (p as unknown as { procs: { child: ChildProcess }[] }).procs.map((s) => s.child);

describe('sampler processes', () => {
  const config = tinyConfig({ initStd: 0.5, contextLength: 40 });
  const prompts = Array.from({ length: 8 }, (_, i) => [BOS, ...Array.from({ length: 1 + (i % 4) }, (_, j) => 6 + i * 5 + j)]);
  const batch: RolloutBatch = {
    prompts,
    first: 0,
    samplesPerPrompt: 3,
    stepSeed: 77,
    sampleBatch: 6,
    sampling: { maxNewTokens: 14, temperature: 1.3, topP: 1, minP: 0 },
  };
  const shards = rolloutShards({ promptsPerStep: 8, samplesPerPrompt: 3, sampleBatch: 6, rollout: {} });

  it("spread a step's shards over the processes and give the trainer's samples bit for bit, with each step's weights", async () => {
    expect(shards).toHaveLength(4);
    for (const seed of [5, 6]) {
      const model = new Transformer(config, new Prng(seed));
      const own = await sampleRollouts(model, batch);
      expect(await pool.sample(model, batch, shards)).toEqual(own);
      model.dispose();
    }
    expect(pool.shardsPerProcess).toHaveLength(2);
    expect(pool.shardsPerProcess.every((n) => n >= 1)).toBe(true);
    expect(pool.shardsPerProcess.reduce((a, b) => a + b)).toBe(8);
  });

  it('sample a refill batch of fewer prompts than the step (dynamic sampling) over the shards it covers, bit for bit', async () => {
    const model = new Transformer(config, new Prng(5));
    const before = pool.shardsPerProcess.reduce((a, b) => a + b);
    const refill = { ...batch, prompts: prompts.slice(0, 3), first: 8 };
    expect(await pool.sample(model, refill, shards)).toEqual(await sampleRollouts(model, refill));
    expect(pool.shardsPerProcess.reduce((a, b) => a + b) - before).toBe(2); // 3 prompts: 2 of the 4 shards of 2
    model.dispose();
  });

  it("score the anchor's log-probs micro-batch by micro-batch over the processes, bit for bit", async () => {
    const anchor = new Transformer(config, new Prng(9));
    const rng = new Prng(3);
    const seqs = Array.from({ length: 11 }, (_, i) => {
      const promptLength = 2 + (i % 3);
      return { tokens: [BOS, ...Array.from({ length: promptLength + 2 + ((i * 7) % 9) }, () => 6 + rng.int(90))], promptLength };
    });
    const chunks = scoringChunks(seqs, 3);
    expect(chunks.map((c) => c.length)).toEqual([3, 3, 3, 2]);
    expect(chunks.flat().map((i) => seqs[i].tokens.length)).toEqual(seqs.map((s) => s.tokens.length).sort((a, b) => a - b));
    const own = responseLogProbs(anchor, seqs, 3, 1.3);
    expect(own.tokens.map((t) => t.length)).toEqual(seqs.map((s) => s.tokens.length - s.promptLength));
    expect(await pool.score(anchor, seqs, 3, 1.3)).toEqual(own);
    // The processes score with the anchor they were last sent, not the policy.
    const other = new Transformer(config, new Prng(10));
    expect(await pool.score(other, seqs, 3, 1.3)).not.toEqual(own);
    [anchor, other].forEach((m) => m.dispose());
  });

  it('fail the step when a process dies, and replace it on the next call', async () => {
    const model = new Transformer(config, new Prng(5));
    const running = pool.sample(model, batch, shards);
    const [victim] = children(pool);
    victim.kill('SIGKILL');
    await expect(running).rejects.toThrow(/sampler process \d+ exited \(SIGKILL\)/);
    if (victim.exitCode === null && victim.signalCode === null) await once(victim, 'exit');
    expect(await pool.sample(model, batch, shards)).toEqual(await sampleRollouts(model, batch));
    expect(children(pool)).not.toContain(victim);
    model.dispose();
  });
});

describe('rl.rollout.processes', () => {
  const quick = { promptsPerStep: 24, samplesPerPrompt: 16, sampleBatch: 384 };
  const refusal = (rollout: object, sampleBatch = 384) => {
    const r = CampaignConfigSchema.safeParse({ rl: { ...quick, sampleBatch, rollout } });
    return r.error?.issues.find((i) => i.path.join('.') === 'rl.rollout.processes')?.message;
  };

  it('is refused where processes would have no shard to sample, or outside local mode, naming the field', () => {
    expect(refusal({ processes: 2 })).toBe(
      '2 sampler processes, but a step has 1 shard of whole sampler calls (24 prompts x 16 samples in calls of sampleBatch 384); lower sampleBatch or use at most 1',
    );
    expect(refusal({ processes: 2 }, 192)).toBeUndefined();
    expect(rlConfig({ ...quick, sampleBatch: 192, rollout: { processes: 2 } }).rollout.processes).toBe(2);
    expect(refusal({ mode: 'workers', processes: 2 }, 192)).toMatch(/^only local mode runs sampler processes/);
    expect(rlConfig().rollout.processes).toBe(1);
  });
});
