import { describe, expect, it } from 'vitest';
import { applyHyperparameters, CampaignConfigSchema, HyperparameterError, parseAssignments } from '../../config/campaign';
import { presetNames, resolveConfig } from '../../config/presets';
import { SMOLLM2 } from '../../infra/models';

describe('campaign config', () => {
  it('every preset validates; smoke is tiny and full uses the paper K = 64, tau = 1.2', () => {
    expect(presetNames()).toEqual(['full', 'hard', 'quick', 'smoke', 'smollm2']);
    for (const p of presetNames()) expect(() => resolveConfig({ preset: p })).not.toThrow();
    expect(resolveConfig({ preset: 'full' }).rl).toMatchObject({ samplesPerPrompt: 64, temperature: 1.2 });
    expect(resolveConfig({ preset: 'smoke' }).sft.steps).toBeLessThan(50);
  });

  it('quick: countdown (search that checking makes cheap), a temperature sweep with n >= 16, every T1 ingredient on', () => {
    const q = resolveConfig({ preset: 'quick' });
    expect(q.task.name).toBe('countdown');
    // pass@k up to 16 from n = 16, greedy and three temperatures chosen between on validation (the RL temperature among them)
    expect(q.eval.samples).toBeGreaterThanOrEqual(16);
    expect(q.eval.problems).toBeGreaterThanOrEqual(500);
    expect(q.eval.temperatures.length).toBeGreaterThanOrEqual(3);
    expect(q.eval.temperatures).toContain(q.rl.temperature);
    expect(q.eval.validation.samples).toBeGreaterThanOrEqual(16);
    expect(q.rl.samplesPerPrompt).toBeGreaterThanOrEqual(16);
    expect(q.rl.betaKl).toBeGreaterThan(0);
    expect(q.rl.alphaEnt).toBeGreaterThan(0);
    expect(q.rl.garbagePenalty).toBe(1);
    expect(q.rl.anchor.mode).toBe('refresh');
    expect(q.rl.warmupSteps).toBeGreaterThan(0);
  });

  it('hard: the quick campaign on countdown with 4-5 numbers, whose searches need longer reasoning, with room to write it', () => {
    const q = resolveConfig({ preset: 'quick' });
    const h = resolveConfig({ preset: 'hard' });
    expect(h.task).toMatchObject({ name: 'countdown', difficulty: { min: 4, max: 5 } });
    expect(h.rl.maxNewTokens).toBeGreaterThan(1.5 * q.rl.maxNewTokens);
    expect(h.eval.maxNewTokens).toBe(h.rl.maxNewTokens);
    expect(h.eval.scaling.fractions).toEqual(q.eval.scaling.fractions);
  });

  it('smollm2: LoRA on the PyPI SmolLM2 pinned by hash, sampled in the training process, no budget sweep', () => {
    const c = resolveConfig({ preset: 'smollm2' });
    expect(c.model.base).toEqual({ uri: 'builtin://smollm2-135m-instruct', sha256: SMOLLM2.sha256 });
    expect(c.model.lora?.targets).toEqual(['q', 'k', 'v', 'o', 'gate', 'up', 'down']);
    expect(c.rl.rollout).toMatchObject({ mode: 'local', processes: 1 });
    expect(c.eval.scaling.enabled).toBe(false);
  });

  it('a pretrained base: LoRA needs one; what it does not support yet is refused by field', () => {
    const base = { uri: 'builtin://smollm2-135m-instruct', sha256: SMOLLM2.sha256 };
    const off = { eval: { scaling: { enabled: false } } };
    expect(() => resolveConfig({ preset: 'smoke', overrides: { ...off, model: { lora: { rank: 4 } } } })).toThrow(
      /model\.lora: LoRA adapts a pretrained base: set model\.base too/,
    );
    expect(() => resolveConfig({ preset: 'smoke', overrides: { ...off, model: { base: { ...base, sha256: 'abc' } } } })).toThrow(
      /model\.base\.sha256: must be 64 lowercase hex digits/,
    );
    expect(() => resolveConfig({ preset: 'smoke', overrides: { model: { base } } })).toThrow(
      /eval\.scaling\.enabled: the inference-scaling sweep runs on our transformer only/,
    );
    expect(() => resolveConfig({ preset: 'smoke', overrides: { ...off, model: { base }, rl: { rollout: { processes: 2 } } } })).toThrow(
      /rl\.rollout: a pretrained base samples in the training process/,
    );
    const ok = resolveConfig({ preset: 'smoke', overrides: { ...off, model: { base, lora: {} } } });
    expect(ok.model.lora).toEqual({ rank: 8, alpha: 8, dropout: 0, targets: ['q', 'v'] });
    // Our transformer's configs are as before: no base, no adapters.
    expect(resolveConfig({ preset: 'smoke' }).model).not.toHaveProperty('base');
  });

  it('a bad value names its path', () => {
    expect(() => resolveConfig({ preset: 'smoke', overrides: { rl: { samplesPerPrompt: 4, updateSamples: 8 } } })).toThrow(
      /rl\.updateSamples: updateSamples \(M\) must not exceed samplesPerPrompt \(K\)/,
    );
    expect(() => resolveConfig({ overrides: { sft: { lr: 'fast' } } })).toThrow(/sft\.lr: Invalid input: expected number/);
    expect(() => resolveConfig({ overrides: { task: { name: 'chess' } } })).toThrow(/task\.name/);
    expect(() => resolveConfig({ overrides: { model: { dModel: 30, nHeads: 4 } } })).toThrow(/dModel must be divisible by nHeads/);
    // Each task's own difficulty range (countdown: 3..6 numbers), refused before a campaign starts.
    expect(() => resolveConfig({ overrides: { task: { name: 'countdown', difficulty: { min: 2, max: 3 } } } })).toThrow(
      /task\.difficulty: countdown takes difficulties 3\.\.6, got 2\.\.3/,
    );
    expect(resolveConfig({ overrides: { task: { name: 'arithmetic', difficulty: { min: 1, max: 2 } } } }).task.difficulty).toEqual({
      min: 1,
      max: 2,
    });
  });

  it('a config that names another task than its preset does not inherit the preset task settings', () => {
    expect(resolveConfig({ preset: 'quick', overrides: { task: { name: 'jsonl', file: 'p.jsonl' } } }).task).toMatchObject({
      name: 'jsonl',
      file: 'p.jsonl',
      difficulty: { min: 1, max: 10 },
    });
    expect(resolveConfig({ preset: 'quick', overrides: { task: { name: 'arithmetic' } } }).task.difficulty).toEqual({ min: 3, max: 3 });
    expect(resolveConfig({ preset: 'quick', overrides: { task: { difficulty: { min: 4, max: 4 } } } }).task).toMatchObject({
      name: 'countdown',
      difficulty: { min: 4, max: 4 },
    });
  });

  it('refuses response budgets shorter than the teacher traces they must hold, naming the field', () => {
    const tight = {
      model: { contextLength: 96 },
      data: { teacher: { maxChars: 200 } },
      rl: { maxNewTokens: 92 },
      eval: { maxNewTokens: 64 },
    };
    // The teacher is capped at contextLength - 4 = 92 characters: rl's 92 holds it, eval's 64 does not.
    expect(() => resolveConfig({ preset: 'quick', overrides: tight })).toThrow(
      /eval\.maxNewTokens: eval\.maxNewTokens = 64 is shorter than the teacher's longest trace \(92 tokens/,
    );
    expect(() => resolveConfig({ preset: 'quick', overrides: { ...tight, eval: { maxNewTokens: 92 } } })).not.toThrow();
    expect(() => resolveConfig({ preset: 'quick', overrides: { ...tight, rl: { maxNewTokens: 91 }, eval: { maxNewTokens: 92 } } })).toThrow(
      /rl\.maxNewTokens/,
    );
    const c = resolveConfig({ preset: 'quick' });
    expect(() => applyHyperparameters(c, { 'rl.maxNewTokens': 8 })).toThrow(/rl\.maxNewTokens = 8 is shorter/);
  });

  it('hyper-parameter changes: tunable keys only, validated, typed from key=value words', () => {
    const c = CampaignConfigSchema.parse({});
    const next = applyHyperparameters(c, parseAssignments(['rl.lr=0.0002', 'rl.temperature=1', 'rl.anchor.mode=ema']));
    expect(next.rl).toMatchObject({ lr: 0.0002, temperature: 1, anchor: { mode: 'ema' } });
    expect(c.rl.lr).not.toBe(0.0002); // the input config is not mutated
    expect(() => applyHyperparameters(c, { 'rl.lr': -1 })).toThrow(HyperparameterError);
    expect(() => applyHyperparameters(c, { 'rl.anchor.mode': 'sometimes' })).toThrow(/rl\.anchor\.mode/);
    expect(() => applyHyperparameters(c, { 'model.dModel': 8 })).toThrow(/"model\.dModel" cannot be changed while a campaign runs/);
    expect(() => parseAssignments(['rl.lr'])).toThrow(/expected key=value/);
  });
});
