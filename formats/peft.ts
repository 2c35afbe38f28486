/**
 * A Hugging Face PEFT LoRA adapter directory, as `PeftModel.save_pretrained` writes it (checked against
 * peft 0.21.2) and `PeftModel.from_pretrained` loads it:
 *  - adapter_config.json: peft_type "LORA", task_type "CAUSAL_LM", r, lora_alpha, lora_dropout,
 *    target_modules (q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj), bias "none",
 *    base_model_name_or_path, and PEFT's other options at their defaults;
 *  - adapter_model.safetensors: per adapted projection of layer l,
 *    `base_model.model.model.layers.{l}.self_attn.q_proj.lora_A.weight` [r, in] and `….lora_B.weight`
 *    [out, r] (torch's [out, in] Linear layout: the transposes of our A [in, r] and B [r, out]).
 * Only plain LoRA is read: a config using anything that changes the function (DoRA, rsLoRA, biases,
 * per-module ranks or alphas, extra trained modules, a subset of layers, base-modifying inits, …) is
 * refused by name rather than loaded as something else.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LlamaConfig } from '../model/llama-config';
import { adaptedWeights, loraTargets, loraNames, loraParamShapes, type LoraAdapters } from '../model/lora';
import { LoraConfigSchema, type LoraTarget } from '../model/lora-config';
import { UserError } from '../util/errors';
import { transpose2d, weightSlots } from './llama-weights';
import { readSafetensorsHeader, readSafetensorsTensor, writeSafetensors, type SafetensorsTensor } from './safetensors';

export class PeftFormatError extends UserError {
  override name = 'PeftFormatError';
}

export const PEFT_CONFIG = 'adapter_config.json';
export const PEFT_WEIGHTS = 'adapter_model.safetensors';

/** Our targets' module names in transformers' Llama-family models. */
export const PEFT_MODULES: Record<LoraTarget, string> = {
  q: 'q_proj',
  k: 'k_proj',
  v: 'v_proj',
  o: 'o_proj',
  gate: 'gate_proj',
  up: 'up_proj',
  down: 'down_proj',
};

export interface PeftAdapter extends LoraAdapters {
  /** base_model_name_or_path: what the adapter was trained on (informational; null in the file when unknown). */
  baseModel?: string;
}

/** adapter_config.json keys that mean what our LoraConfig says, or nothing to the function computed. */
const UNDERSTOOD = new Set([
  'peft_type',
  'task_type',
  'r',
  'lora_alpha',
  'lora_dropout',
  'target_modules',
  'bias',
  'base_model_name_or_path',
  'init_lora_weights',
  'inference_mode',
  'revision',
  'peft_version',
  'auto_mapping',
  'megatron_core',
  'qalora_group_size',
]);

/**
 * Any other key must be unset (null, false, {} or []): each of them turns on something plain LoRA is
 * not (use_dora, use_rslora, rank_pattern, alpha_pattern, modules_to_save, layers_to_transform,
 * layers_pattern, fan_in_fan_out, lora_bias, trainable_token_indices, target_parameters, loftq_config, …),
 * including options of PEFT versions after ours.
 */
function isUnset(v: unknown): boolean {
  if (v === null || v === false) return true;
  if (Array.isArray(v)) return v.length === 0;
  return typeof v === 'object' && Object.keys(v).length === 0;
}

/** The tensor names of one adapted weight in the file, from the base weight's transformers name. */
function peftKeys(slotHf: string): { a: string; b: string } {
  const module = `base_model.model.${slotHf.replace(/\.weight$/, '')}`;
  return { a: `${module}.lora_A.weight`, b: `${module}.lora_B.weight` };
}

/** Each adapter of the config: our names and shapes, and its two tensors' names in the file. */
function adapterSlots(config: LlamaConfig, adapters: LoraAdapters['config']) {
  const hf = new Map(weightSlots(config).map((s) => [s.name, s.hf]));
  const shapes = new Map(loraParamShapes(config, adapters));
  return adaptedWeights(config, adapters).map(({ weight }) => {
    const ours = loraNames(weight);
    return { ours, shapeA: shapes.get(ours.a)!, shapeB: shapes.get(ours.b)!, file: peftKeys(hf.get(weight)!) };
  });
}

/**
 * Writes `adapters` (for a base of `config`) as a PEFT adapter directory; float32 tensors. Files are
 * written under temporary names and renamed.
 */
export function writePeftAdapter(dir: string, config: LlamaConfig, adapters: LoraAdapters, options: { baseModel?: string } = {}): void {
  const lora = LoraConfigSchema.parse(adapters.config);
  const slots = adapterSlots(config, lora);
  const tensors = slots.flatMap(({ ours, shapeA, shapeB, file }) => {
    const value = (name: string, shape: number[]) => {
      const v = adapters.weights[name];
      if (!v || v.length !== shape[0] * shape[1])
        throw new PeftFormatError(`PEFT export: adapter "${name}" missing or not of shape [${shape}]`);
      return transpose2d(v, shape[0], shape[1]);
    };
    return [
      { name: file.a, shape: [shapeA[1], shapeA[0]], data: value(ours.a, shapeA) },
      { name: file.b, shape: [shapeB[1], shapeB[0]], data: value(ours.b, shapeB) },
    ];
  });
  const adapterConfig = {
    peft_type: 'LORA',
    task_type: 'CAUSAL_LM',
    base_model_name_or_path: options.baseModel ?? null,
    r: lora.rank,
    lora_alpha: lora.alpha,
    lora_dropout: lora.dropout,
    target_modules: loraTargets(lora).map((t) => PEFT_MODULES[t]),
    bias: 'none',
    fan_in_fan_out: false,
    init_lora_weights: true,
    inference_mode: true,
    use_dora: false,
    use_rslora: false,
    lora_bias: false,
    modules_to_save: null,
    layers_to_transform: null,
    layers_pattern: null,
    rank_pattern: {},
    alpha_pattern: {},
    revision: null,
  };
  mkdirSync(dir, { recursive: true });
  writeSafetensors(join(dir, PEFT_WEIGHTS), tensors, 'F32', { format: 'pt' });
  const path = join(dir, PEFT_CONFIG);
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}`;
  writeFileSync(tmp, JSON.stringify(adapterConfig, null, 2) + '\n');
  renameSync(tmp, path);
}

/** Reads a PEFT LoRA adapter directory for a base of `config`: its hyper-parameters and our-layout values. */
export function readPeftAdapter(dir: string, config: LlamaConfig): PeftAdapter {
  const configPath = join(dir, PEFT_CONFIG);
  const weightsPath = join(dir, PEFT_WEIGHTS);
  for (const p of [configPath, weightsPath])
    if (!existsSync(p)) throw new PeftFormatError(`${p}: missing (a PEFT adapter directory needs ${PEFT_CONFIG} and ${PEFT_WEIGHTS})`);
  const raw = parseConfig(configPath);
  const lora = loraConfigFrom(raw, configPath);

  const header = readSafetensorsHeader(weightsPath);
  const inFile = new Map<string, SafetensorsTensor>(header.tensors.map((t) => [t.name, t]));
  const weights: Record<string, Float32Array> = {};
  const expected = new Set<string>();
  const read = (key: string, ours: string, shape: number[]) => {
    expected.add(key);
    const t = inFile.get(key);
    if (!t) throw new PeftFormatError(`${weightsPath}: tensor ${key} is missing (target_modules ${JSON.stringify(raw.target_modules)})`);
    const want = [shape[1], shape[0]];
    if (t.shape.join(',') !== want.join(','))
      throw new PeftFormatError(`${weightsPath}: tensor ${key} has shape [${t.shape}], expected [${want}]`);
    weights[ours] = transpose2d(readSafetensorsTensor(weightsPath, t), want[0], want[1]);
  };
  for (const { ours, shapeA, shapeB, file } of adapterSlots(config, lora)) {
    read(file.a, ours.a, shapeA);
    read(file.b, ours.b, shapeB);
  }
  const extra = header.tensors.find((t) => !expected.has(t.name));
  if (extra)
    throw new PeftFormatError(
      `${weightsPath}: tensor ${extra.name} is not a LoRA A/B matrix of target_modules ${JSON.stringify(raw.target_modules)}`,
    );
  const baseModel = typeof raw.base_model_name_or_path === 'string' ? raw.base_model_name_or_path : undefined;
  return { config: lora, weights, ...(baseModel !== undefined ? { baseModel } : {}) };
}

function parseConfig(path: string): Record<string, unknown> {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new PeftFormatError(`${path}: not valid JSON (${(e as Error).message.split('\n')[0]})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new PeftFormatError(`${path}: not a JSON object`);
  return json as Record<string, unknown>;
}

/** adapter_config.json -> our LoraConfig, refusing (by key) whatever plain LoRA on our targets does not cover. */
function loraConfigFrom(raw: Record<string, unknown>, path: string) {
  const refuse = (what: string) =>
    new PeftFormatError(`${path}: ${what}; only plain LoRA on q/k/v/o/gate/up/down projections is supported`);
  const show = (v: unknown) => JSON.stringify(v);
  if (raw.peft_type !== 'LORA') throw refuse(`peft_type is ${show(raw.peft_type)}, not "LORA"`);
  if (raw.task_type != null && raw.task_type !== 'CAUSAL_LM') throw refuse(`task_type is ${show(raw.task_type)}, not "CAUSAL_LM"`);
  if (raw.bias !== undefined && raw.bias !== 'none') throw refuse(`bias is ${show(raw.bias)}, not "none"`);
  const init = raw.init_lora_weights;
  if (init !== undefined && init !== true && init !== false && init !== 'gaussian') {
    throw refuse(`init_lora_weights is ${show(init)} (it changes the base weights)`);
  }
  for (const [key, value] of Object.entries(raw)) if (!UNDERSTOOD.has(key) && !isUnset(value)) throw refuse(`${key} is ${show(value)}`);

  const modules = raw.target_modules;
  if (!Array.isArray(modules)) throw refuse(`target_modules is ${show(modules)}, not a list of module names`);
  const byModule = new Map(Object.entries(PEFT_MODULES).map(([t, m]) => [m, t as LoraTarget]));
  const targets = modules.map((m) => {
    const t = typeof m === 'string' ? byModule.get(m) : undefined;
    if (!t) throw refuse(`target_modules names ${show(m)}`);
    return t;
  });
  const parsed = LoraConfigSchema.safeParse({ rank: raw.r, alpha: raw.lora_alpha, dropout: raw.lora_dropout ?? 0, targets });
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const key =
      { rank: 'r', alpha: 'lora_alpha', dropout: 'lora_dropout', targets: 'target_modules' }[String(issue.path[0])] ?? issue.path.join('.');
    throw refuse(`${key}: ${issue.message}`);
  }
  return { ...parsed.data, targets: loraTargets(parsed.data) };
}
