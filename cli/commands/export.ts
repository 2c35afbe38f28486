import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { EXPORT_DTYPES, exportGguf, exportHf, type ExportDtype } from '../../formats/export';
import { connectionOptions, UsageError, type Command } from '../args';
import { loadModelArg, MODEL_ARG_HELP } from '../pretrained';

const FORMATS = ['gguf', 'safetensors'] as const;

export const exportCommands: Command[] = [
  {
    path: ['export'],
    summary: 'Write a pretrained model as a GGUF file (llama.cpp, ollama) or a Hugging Face directory (transformers, vLLM)',
    usage: `export MODEL --format gguf|safetensors [--dtype f32|f16|bf16] --out FILE|DIR [--sha256 HEX] [--json]\n  MODEL: ${MODEL_ARG_HELP}; --sha256 pins its content hash`,
    options: {
      format: { type: 'string' },
      dtype: { type: 'string', default: 'f32' },
      out: { type: 'string' },
      sha256: { type: 'string' },
      json: { type: 'boolean' },
      ...connectionOptions,
    },
    async run(v, pos) {
      if (pos.length !== 1) throw new UsageError('export: expected one MODEL (a GGUF file or a Hugging Face model directory)');
      if (!FORMATS.includes(v.format))
        throw new UsageError(`--format: expected one of ${FORMATS.join(', ')}, got ${JSON.stringify(v.format ?? null)}`);
      if (!EXPORT_DTYPES.includes(v.dtype)) throw new UsageError(`--dtype: expected one of ${EXPORT_DTYPES.join(', ')}, got "${v.dtype}"`);
      if (!v.out) throw new UsageError('--out: required (a file for gguf, a directory for safetensors)');
      const out = resolve(v.out);
      if (existsSync(out)) throw new UsageError(`--out: ${out} already exists (an export never overwrites)`);
      const t0 = Date.now();
      const model = await loadModelArg(pos[0], v, v.sha256);
      if (v.format === 'gguf') exportGguf(model, out, v.dtype as ExportDtype);
      else exportHf(model, out, v.dtype as ExportDtype);
      const summary = {
        out,
        format: v.format,
        dtype: v.dtype,
        architecture: model.config.architecture,
        source: model.source.uri,
        sha256: model.source.sha256,
        seconds: (Date.now() - t0) / 1000,
      };
      console.log(
        v.json
          ? JSON.stringify(summary)
          : `wrote ${out} (${v.format}, ${v.dtype}, ${model.config.architecture}) in ${summary.seconds.toFixed(1)} s`,
      );
    },
  },
];
