import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { EXPORT_DTYPES, exportGguf, exportHf, type ExportableModel, type ExportDtype } from '../../formats/export';
import { writePeftAdapter } from '../../formats/peft';
import { initBackend } from '../../model/backend';
import type { LlamaConfig } from '../../model/llama-config';
import type { PolicyOrigin } from '../../model/policy';
import type { TrainingState } from '../../model/state';
import { connectionOptions, UsageError, type Command } from '../args';
import { loadCheckpointModel } from '../checkpoint-model';
import { isModelArg, loadModelArg, MODEL_ARG_HELP } from '../pretrained';

const FORMATS = ['gguf', 'safetensors'] as const;

export const exportCommands: Command[] = [
  {
    path: ['export'],
    summary:
      'Write a pretrained model, or a campaign checkpoint trained from one, as a GGUF file (llama.cpp, ollama), a Hugging Face directory (transformers, vLLM) or a PEFT adapter',
    usage:
      `export MODEL|CHECKPOINT --format gguf|safetensors [--dtype f32|f16|bf16] --out FILE|DIR [--sha256 HEX] [--json]\n` +
      `export CHECKPOINT --adapter --out DIR [--json]\n` +
      `  MODEL: ${MODEL_ARG_HELP}; --sha256 pins its content hash\n` +
      '  CHECKPOINT: a checkpoint id of a campaign on a pretrained base (e.g. CAMPAIGN/rl-e0002): its weights (LoRA adapters\n' +
      '  merged into the base it names by content hash), or with --adapter its LoRA adapters alone as a PEFT adapter directory\n' +
      '  (adapter_config.json, adapter_model.safetensors) that transformers and vLLM load beside the base',
    options: {
      format: { type: 'string' },
      dtype: { type: 'string', default: 'f32' },
      out: { type: 'string' },
      sha256: { type: 'string' },
      adapter: { type: 'boolean' },
      json: { type: 'boolean' },
      ...connectionOptions,
    },
    async run(v, pos) {
      if (pos.length !== 1)
        throw new UsageError('export: expected one MODEL (a GGUF file or a Hugging Face model directory) or CHECKPOINT');
      if (!v.adapter && !FORMATS.includes(v.format))
        throw new UsageError(`--format: expected one of ${FORMATS.join(', ')}, got ${JSON.stringify(v.format ?? null)}`);
      if (v.adapter && v.format !== undefined) throw new UsageError('--adapter writes a PEFT adapter directory: give no --format');
      if (!EXPORT_DTYPES.includes(v.dtype)) throw new UsageError(`--dtype: expected one of ${EXPORT_DTYPES.join(', ')}, got "${v.dtype}"`);
      if (!v.out) throw new UsageError('--out: required (a file for gguf, a directory for safetensors and --adapter)');
      const out = resolve(v.out);
      if (existsSync(out)) throw new UsageError(`--out: ${out} already exists (an export never overwrites)`);
      const t0 = Date.now();
      const fromCheckpoint = !isModelArg(pos[0]);
      if (v.adapter && !fromCheckpoint) throw new UsageError('--adapter: exports the LoRA adapters of a campaign CHECKPOINT, not a MODEL');
      const model = fromCheckpoint ? await checkpointModel(pos[0], v) : await loadModelArg(pos[0], v, v.sha256);
      if (v.adapter) {
        const { origin, state } = model as Awaited<ReturnType<typeof checkpointModel>>;
        if (!origin.lora)
          throw new UsageError(`--adapter: checkpoint ${pos[0]} trains every weight of its base (no LoRA adapters to export)`);
        writePeftAdapter(out, state.config, { config: origin.lora, weights: state.weights }, { baseModel: origin.base.uri });
      } else if (v.format === 'gguf') exportGguf(model, out, v.dtype as ExportDtype);
      else exportHf(model, out, v.dtype as ExportDtype);
      const summary = {
        out,
        format: v.adapter ? 'peft' : v.format,
        dtype: v.adapter ? 'f32' : v.dtype,
        architecture: model.config.architecture,
        source: model.source.uri,
        sha256: model.source.sha256,
        seconds: (Date.now() - t0) / 1000,
      };
      console.log(
        v.json
          ? JSON.stringify(summary)
          : `wrote ${out} (${summary.format}, ${summary.dtype}, ${model.config.architecture}) in ${summary.seconds.toFixed(1)} s`,
      );
    },
  },
];

/** A campaign checkpoint's model as an export writes it: its base's tokenizer, LoRA adapters merged. */
async function checkpointModel(
  id: string,
  v: Record<string, any>,
): Promise<ExportableModel & { source: { uri: string; sha256: string }; origin: PolicyOrigin; state: TrainingState<LlamaConfig> }> {
  const m = await loadCheckpointModel(id, v);
  if (m.family === 'ours')
    throw new UsageError(
      `checkpoint ${id} is one of our transformer: export writes Llama-family models (pretrained bases and campaigns on them)`,
    );
  let weights = m.state.weights;
  if (m.origin.lora) {
    await initBackend();
    const llama = m.llama();
    weights = llama.mergedWeights();
    llama.dispose();
  }
  return {
    config: m.state.config,
    weights,
    tokenizer: m.base.tokenizer,
    name: `${m.base.name}-${id.replace(/[^A-Za-z0-9._-]+/g, '-')}`,
    source: { uri: `checkpoint ${id} on ${m.origin.base.uri}`, sha256: m.origin.base.sha256 },
    origin: m.origin,
    state: m.state,
  };
}
