/**
 * A LoRA campaign on a pretrained base, end to end on real Temporal and SeaweedFS: a tiny random
 * Llama (the llama-tied fixture, its context widened for the chat prompts) through synthesis, the
 * base's zero-shot evaluation, SFT, RL and evaluation, in worker processes. Its checkpoints hold the
 * adapters and name the base by content hash; `t1 export` merges them into a GGUF that llama.cpp
 * scores as we do, or writes them as a PEFT adapter. A worker killed with SIGKILL during an RL epoch
 * costs nothing: the campaign ends on the same bits as an undisturbed one.
 */
import * as tf from '@tensorflow/tfjs';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getLlama, LlamaLogLevel } from 'node-llama-cpp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { campaignStatus, startCampaign } from '../../client/campaigns';
import { resolveConfig } from '../../config/presets';
import { ChatFormat } from '../../formats/chat-format';
import { PEFT_CONFIG, PEFT_WEIGHTS, readPeftAdapter } from '../../formats/peft';
import { loadPretrained } from '../../formats/pretrained';
import { contentHash } from '../../formats/source';
import { initBackend } from '../../model/backend';
import { Llama } from '../../model/llama';
import { llamaParamShapes } from '../../model/shapes';
import type { LlamaConfig } from '../../model/llama-config';
import type { PolicyOrigin } from '../../model/policy';
import { decodeAnyState, type TrainingState } from '../../model/state';
import { sizeOf } from '../../storage/manifest';
import type { CampaignResult } from '../../contracts/campaign';
import { killHard, spawnWorker, t1, uniqueCampaign, useClientAndStore, waitFor } from './helpers';

const { client, store } = useClientAndStore();
const FIXTURE = 'tests/fixtures/pretrained/llama-tied';
let dir: string;
let baseDir: string;
let sha256: string;

beforeAll(async () => {
  await initBackend('tfjs-node');
  dir = mkdtempSync(join(tmpdir(), 't1-pretrained-campaign-'));
  // The fixture's 128 positions do not hold a chat prompt with its system message; RoPE has no table to outgrow.
  baseDir = join(dir, 'models', 'tiny-chat');
  cpSync(FIXTURE, baseDir, { recursive: true, filter: (f) => !/reference/.test(f) });
  const config = JSON.parse(readFileSync(join(baseDir, 'config.json'), 'utf8'));
  writeFileSync(join(baseDir, 'config.json'), JSON.stringify({ ...config, max_position_embeddings: 512 }));
  sha256 = await contentHash(baseDir);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const config = () =>
  resolveConfig({
    preset: 'smoke',
    overrides: {
      seed: 5,
      model: { base: { uri: baseDir, sha256 }, lora: { rank: 2, alpha: 4, targets: ['q', 'v'] } },
      data: { sftExamples: 48 },
      sft: { steps: 6, batchSize: 4, evalEvery: 6 },
      rl: { epochs: 2, stepsPerEpoch: 3, promptsPerStep: 2, samplesPerPrompt: 2, maxNewTokens: 64 },
      eval: { problems: 8, samples: 2, maxNewTokens: 64, scaling: { enabled: false } },
      checkpoints: { sftEvery: 2, rlEvery: 1 },
    },
  });
const workerEnv = () => ({ T1_ALLOW_MODEL_DIRS: join(dir, 'models') });

async function stateOf(id: string): Promise<TrainingState<LlamaConfig>> {
  const { objects } = await store.load(id);
  return decodeAnyState(objects.state) as TrainingState<LlamaConfig>;
}

describe('a LoRA campaign on a pretrained base (real Temporal + S3, worker processes)', () => {
  let reference: CampaignResult;

  it('runs end to end; checkpoints hold adapters naming the base; the export merges them as llama.cpp reads them', async () => {
    const worker = spawnWorker('all', workerEnv());
    try {
      const id = uniqueCampaign('lora');
      reference = (await (await startCampaign(client(), { campaignId: id, config: config(), preset: 'smoke' })).result()) as CampaignResult;
    } finally {
      await killHard(worker);
    }
    // The base zero-shot, then the SFT and final checkpoints, on the same held-out problems.
    expect(reference.evals.map((e) => e.label)).toEqual(['base', 'sft', 'final']);
    expect(reference.evals[0].checkpoint).toBeNull();
    // 8 test problems, 2 samples at each temperature (greedy, when validation chooses it, has one).
    expect(reference.evals.every((e) => e.n === 8 && e.sweep!.samples === 2)).toBe(true);
    expect(reference.epochs.map((e) => e.steps)).toEqual([3, 3]);

    // Checkpoints: adapters with their optimizer state (and an RL epoch's anchor adapters), the base named by its hash.
    const base = loadPretrained(baseDir);
    const fullBytes = llamaParamShapes(base.config).reduce((n, [, shape]) => n + 4 * shape.reduce((a, b) => a * b, 1), 0);
    for (const ref of [reference.checkpoints.sft, reference.checkpoints.final]) {
      const s = await stateOf(ref.id);
      const origin = (s.extra as { origin: PolicyOrigin }).origin;
      expect(origin.base).toEqual({ uri: baseDir, sha256 });
      expect(origin.lora).toEqual({ rank: 2, alpha: 4, dropout: 0, targets: ['q', 'v'] });
      expect(Object.keys(s.weights).every((n) => /\.lora_[ab]$/.test(n))).toBe(true);
      expect(Object.keys(s.optimizer.m)).toEqual(Object.keys(s.weights));
      const bytes = sizeOf((await store.manifest(ref.id))!);
      expect(bytes * 10, `${ref.id}: ${bytes} bytes, the full weights ${fullBytes}`).toBeLessThanOrEqual(fullBytes);
    }
    // RL moved the adapters (B starts at zero: SFT and RL both trained them).
    const final = await stateOf(reference.checkpoints.final.id);
    expect(Object.entries(final.weights).some(([n, w]) => n.endsWith('.lora_b') && w.some((x) => x !== 0))).toBe(true);

    // t1 export merges the adapters into the base; llama.cpp on that file gives our logits.
    const gguf = join(dir, 'final.gguf');
    const exported = await t1('export', reference.checkpoints.final.id, '--format', 'gguf', '--out', gguf, '--json');
    expect(exported.code, exported.stderr).toBe(0);
    expect(JSON.parse(exported.stdout)).toMatchObject({ format: 'gguf', sha256 });
    const format = new ChatFormat(base.tokenizer);
    const tokens = format.buildExample({
      prompt: '3 5 7 -> 22',
      reasoning: 'try 3*5+7=22\n',
      answer: '3*5+7',
      verification: '\nchk 3*5+7=22 ok',
    }).tokens;
    const ours = new Llama(final.config, base.weights, {
      config: (final.extra as { origin: PolicyOrigin }).origin.lora!,
      weights: final.weights,
    });
    const logProbs = tf.tidy(
      () => tf.logSoftmax(ours.forward(tf.tensor2d([tokens], [1, tokens.length], 'int32'))).dataSync() as Float32Array,
    );
    ours.dispose();
    const V = base.config.vocabSize;
    const cpp = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
    const model = await cpp.loadModel({ modelPath: gguf });
    const ctx = await model.createContext({
      contextSize: 512,
      threads: 2,
      flashAttention: false,
      experimentalKvCacheKeyType: 'F32',
      experimentalKvCacheValueType: 'F32',
    });
    try {
      const items = tokens.map(
        (t) => [t, { generateNext: { probabilities: true, options: { temperature: 1, topK: 0, topP: 1, minP: 0 } } }] as const,
      );
      const results = await ctx.getSequence().controlledEvaluate(items as never);
      let klMax = 0;
      let agree = 0;
      results.forEach((r, t) => {
        const p = new Float32Array(V);
        for (const [id, pr] of r!.next.probabilities!) p[id] = pr;
        const q = logProbs.subarray(t * V, (t + 1) * V);
        let kl = 0;
        for (let v = 0; v < V; v++) if (p[v] > 0) kl += p[v] * (Math.log(p[v]) - q[v]);
        klMax = Math.max(klMax, kl);
        if (p.indexOf(Math.max(...p)) === q.indexOf(Math.max(...q))) agree++;
      });
      expect(agree / tokens.length).toBe(1);
      expect(klMax).toBeLessThan(1e-4);
    } finally {
      await ctx.dispose();
      await model.dispose();
      await cpp.dispose();
    }

    // --adapter: the adapters alone, as PEFT writes them, for transformers and vLLM beside the base.
    const peft = join(dir, 'final-adapter');
    const adapter = await t1('export', reference.checkpoints.final.id, '--adapter', '--out', peft);
    expect(adapter.code, adapter.stderr).toBe(0);
    expect(existsSync(join(peft, PEFT_CONFIG)) && existsSync(join(peft, PEFT_WEIGHTS))).toBe(true);
    const back = readPeftAdapter(peft, base.config);
    expect(back.config).toEqual({ rank: 2, alpha: 4, dropout: 0, targets: ['q', 'v'] });
    expect(back.weights).toEqual(final.weights);
    expect(JSON.parse(readFileSync(join(peft, PEFT_CONFIG), 'utf8')).base_model_name_or_path).toBe(baseDir);
  }, 900_000);

  it('kill -9 of the worker during a LoRA RL epoch: the campaign completes on the same final bits as the undisturbed run', async () => {
    let worker = spawnWorker('all', workerEnv());
    const id = uniqueCampaign('lora-crash');
    try {
      const h = await startCampaign(client(), { campaignId: id, config: config(), preset: 'smoke' });
      await waitFor('RL past its first intra checkpoint', async () => !!(await store.manifest(`${id}/rl-e0001-s000001`)), 600_000, 50);
      expect(await store.manifest(`${id}/rl-e0001`)).toBeUndefined(); // the kill lands inside the epoch
      await killHard(worker);
      worker = spawnWorker('all', workerEnv());
      const result = (await h.result()) as CampaignResult;
      expect(result.checkpoints.sft.sha256).toBe(reference.checkpoints.sft.sha256);
      expect(result.checkpoints.final.sha256).toBe(reference.checkpoints.final.sha256);
      expect((await campaignStatus(h)).epochs[0].resumedFromStep).toBeGreaterThanOrEqual(1);
    } finally {
      await killHard(worker);
    }
  }, 900_000);
});
