/**
 * PEFT LoRA adapter directories (formats/peft.ts): adapters written by the real peft library
 * (tests/fixtures/pretrained/make_tiny.sh, the <base>-lora fixtures) give peft's logits on our Llama,
 * ours read back bitwise, and adapter configs we cannot honour are refused by name.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PEFT_CONFIG, PEFT_WEIGHTS, PeftFormatError, readPeftAdapter, writePeftAdapter } from '../../../formats/peft';
import { loadPretrained } from '../../../formats/pretrained';
import { readSafetensorsHeader, readSafetensorsTensor, writeSafetensors } from '../../../formats/safetensors';
import { initBackend } from '../../../model/backend';
import { Llama } from '../../../model/llama';
import type { LlamaConfig } from '../../../model/llama-config';
import { loraParamShapes, type LoraAdapters } from '../../../model/lora';
import { LORA_TARGETS } from '../../../model/lora-config';
import { UserError } from '../../../util/errors';
import { maxAbsDiff } from '../model/helpers';
import { logitsOf, randomAdapters, tinyLlama } from '../model/llama-helpers';

const FIXTURES = join(import.meta.dirname, '../../fixtures/pretrained');

interface LoraReference {
  base: string;
  input_ids: number[][];
  lora: { r: number; lora_alpha: number; lora_dropout: number; target_modules: string[] };
  max_abs_change_from_base: number;
}

let tmp: string;
beforeAll(async () => {
  await initBackend('tfjs-node');
  tmp = mkdtempSync(join(tmpdir(), 't1-peft-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function reference(name: string): { ref: LoraReference; logits: Float32Array } {
  const dir = join(FIXTURES, name);
  const ref = JSON.parse(readFileSync(join(dir, 'reference.json'), 'utf8')) as LoraReference;
  const bytes = readFileSync(join(dir, 'reference-logits.bin'));
  return { ref, logits: new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)) };
}

describe.each(['llama-tied-lora', 'qwen2-lora'])('%s from peft', (name) => {
  it('reads the adapter’s config: r, lora_alpha, lora_dropout and target_modules', () => {
    const { ref } = reference(name);
    const base = loadPretrained(join(FIXTURES, ref.base));
    const adapter = readPeftAdapter(join(FIXTURES, name), base.config);
    const modules = { q: 'q_proj', k: 'k_proj', v: 'v_proj', o: 'o_proj', gate: 'gate_proj', up: 'up_proj', down: 'down_proj' };
    expect(adapter.config.rank).toBe(ref.lora.r);
    expect(adapter.config.alpha).toBe(ref.lora.lora_alpha);
    expect(adapter.config.dropout).toBe(ref.lora.lora_dropout);
    expect(adapter.config.targets.map((t) => modules[t]).sort()).toEqual([...ref.lora.target_modules].sort());
    expect(adapter.baseModel).toBe(ref.base);
    expect(Object.keys(adapter.weights).sort()).toEqual(
      loraParamShapes(base.config, adapter.config)
        .map(([n]) => n)
        .sort(),
    );
  });

  it('on its base gives peft’s logits to 1e-4, unmerged and merged', () => {
    const { ref, logits } = reference(name);
    const base = loadPretrained(join(FIXTURES, ref.base));
    const m = new Llama(base.config, base.weights, readPeftAdapter(join(FIXTURES, name), base.config));
    const merged = new Llama(base.config, m.mergedWeights());
    const plain = new Llama(base.config, base.weights);
    const diff = maxAbsDiff(logitsOf(m, ref.input_ids), logits);
    console.log(`[peft parity] ${name}: max |logit difference| ${diff.toExponential(2)} over ${logits.length} logits`);
    expect(diff).toBeLessThan(1e-4);
    expect(maxAbsDiff(logitsOf(merged, ref.input_ids), logits)).toBeLessThan(1e-4);
    // The adapter matters: without it the logits are far from peft's.
    expect(ref.max_abs_change_from_base).toBeGreaterThan(1);
    expect(maxAbsDiff(logitsOf(plain, ref.input_ids), logits)).toBeGreaterThan(1);
    [m, merged, plain].forEach((x) => x.dispose());
  });

  it('writes back what it read: same adapter bitwise, same tensors in the file', () => {
    const { ref } = reference(name);
    const { config } = loadPretrained(join(FIXTURES, ref.base));
    const adapter = readPeftAdapter(join(FIXTURES, name), config);
    const out = join(tmp, name);
    writePeftAdapter(out, config, adapter, { baseModel: adapter.baseModel });
    expect(readPeftAdapter(out, config)).toEqual(adapter);
    const tensors = (file: string) =>
      Object.fromEntries(
        readSafetensorsHeader(file)
          .tensors.map((t) => [t.name, { shape: t.shape, data: readSafetensorsTensor(file, t) }] as const)
          .sort(([a], [b]) => (a < b ? -1 : 1)),
      );
    expect(tensors(join(out, PEFT_WEIGHTS))).toEqual(tensors(join(FIXTURES, name, PEFT_WEIGHTS)));
  });
});

/** The tiny Llama as a Qwen2. */
function tiny(): LlamaConfig {
  return tinyLlama({ architecture: 'Qwen2ForCausalLM' });
}

/** Adapters on every target, every A and B N(0,1) from Prng(seed). */
function everyTarget(c: LlamaConfig, seed: number): LoraAdapters {
  return randomAdapters(c, { rank: 3, alpha: 5, dropout: 0.05, targets: [...LORA_TARGETS] }, seed, 1);
}

describe('PEFT adapter directories', () => {
  it('round-trip our adapters bitwise, every target, in the layout and names peft writes', () => {
    const c = tiny();
    const adapters = everyTarget(c, 1);
    const dir = join(tmp, 'round-trip');
    writePeftAdapter(dir, c, adapters, { baseModel: 'some/base' });
    expect(readPeftAdapter(dir, c)).toEqual({ ...adapters, baseModel: 'some/base' });
    const json = JSON.parse(readFileSync(join(dir, PEFT_CONFIG), 'utf8'));
    expect(json).toMatchObject({
      peft_type: 'LORA',
      task_type: 'CAUSAL_LM',
      r: 3,
      lora_alpha: 5,
      lora_dropout: 0.05,
      bias: 'none',
      base_model_name_or_path: 'some/base',
      target_modules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
    });
    // q's A is [r, in] = [3, 16] in the file, our [16, 3] transposed; down's B [out, r] = [16, 3].
    const header = readSafetensorsHeader(join(dir, PEFT_WEIGHTS));
    const byName = new Map(header.tensors.map((t) => [t.name, t]));
    const qa = byName.get('base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight')!;
    expect(qa.shape).toEqual([3, 16]);
    expect(byName.get('base_model.model.model.layers.1.mlp.down_proj.lora_B.weight')!.shape).toEqual([16, 3]);
    const fileA = readSafetensorsTensor(join(dir, PEFT_WEIGHTS), qa);
    const ours = adapters.weights['h0.attn.wq.lora_a'];
    expect(fileA[1 * 16 + 5]).toBe(ours[5 * 3 + 1]); // file [j, i] = ours [i, j]
    expect(header.tensors).toHaveLength(2 * 2 * 7);
  });

  const refusals: [string, Record<string, unknown>, RegExp][] = [
    ['DoRA', { use_dora: true }, /use_dora/],
    ['rsLoRA', { use_rslora: true }, /use_rslora/],
    ['trained biases', { bias: 'lora_only' }, /bias/],
    ['per-module ranks', { rank_pattern: { q_proj: 2 } }, /rank_pattern/],
    ['per-module alphas', { alpha_pattern: { q_proj: 2 } }, /alpha_pattern/],
    ['extra trained modules', { modules_to_save: ['lm_head'] }, /modules_to_save/],
    ['a subset of layers', { layers_to_transform: [0] }, /layers_to_transform/],
    ['a base-modifying init', { init_lora_weights: 'pissa' }, /init_lora_weights/],
    ['an option from a later peft', { use_hyper_lora: true }, /use_hyper_lora/],
    ['a pattern for target_modules', { target_modules: '.*(q|v)_proj' }, /target_modules/],
    ['a module we do not adapt', { target_modules: ['q_proj', 'lm_head'] }, /target_modules.*lm_head/],
    ['another PEFT method', { peft_type: 'IA3' }, /peft_type/],
    ['another task', { task_type: 'SEQ_CLS' }, /task_type/],
    ['rank 0', { r: 0 }, /\br\b/],
  ];
  it.each(refusals)('refuses %s, naming the key in one line', (_, change, named) => {
    const c = tiny();
    const dir = join(tmp, 'refused');
    writePeftAdapter(dir, c, everyTarget(c, 2));
    const json = JSON.parse(readFileSync(join(dir, PEFT_CONFIG), 'utf8'));
    writeFileSync(join(dir, PEFT_CONFIG), JSON.stringify({ ...json, ...change }));
    let error: unknown;
    try {
      readPeftAdapter(dir, c);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(PeftFormatError);
    expect(error).toBeInstanceOf(UserError);
    expect((error as Error).message).toMatch(named);
    expect((error as Error).message).not.toContain('\n');
  });

  it('refuses a missing, an unexpected or a misshapen tensor, by name', () => {
    const c = tiny();
    const dir = join(tmp, 'tensors');
    writePeftAdapter(dir, c, everyTarget(c, 3));
    const file = join(dir, PEFT_WEIGHTS);
    const original = readSafetensorsHeader(file).tensors.map((t) => ({
      name: t.name,
      shape: t.shape,
      data: readSafetensorsTensor(file, t),
    }));
    const qa = 'base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight';
    const rewrite = (tensors: typeof original) => writeSafetensors(file, tensors, 'F32', { format: 'pt' });

    rewrite(original.filter((t) => t.name !== qa));
    expect(() => readPeftAdapter(dir, c)).toThrow(/layers\.1\.self_attn\.q_proj\.lora_A\.weight is missing/);
    const magnitude = 'base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector';
    rewrite([...original, { name: magnitude, shape: [32], data: new Float32Array(32) }]);
    expect(() => readPeftAdapter(dir, c)).toThrow(PeftFormatError);
    expect(() => readPeftAdapter(dir, c)).toThrow(/lora_magnitude_vector/);
    rewrite(original.map((t) => (t.name === qa ? { ...t, shape: [2, 24], data: t.data.subarray(0, 48) } : t)));
    expect(() => readPeftAdapter(dir, c)).toThrow(/q_proj\.lora_A\.weight has shape \[2,24\], expected \[3,16\]/);
  });

  it('refuses a directory without an adapter', () => {
    expect(() => readPeftAdapter(join(FIXTURES, 'qwen2'), tiny())).toThrow(PeftFormatError);
    expect(() => readPeftAdapter(join(FIXTURES, 'qwen2'), tiny())).toThrow(/adapter_config\.json: missing/);
  });
});
