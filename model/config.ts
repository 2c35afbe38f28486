import { z } from 'zod';
import { VOCAB_SIZE } from './tokenizer';

/** Decoder-only transformer hyperparameters. Defaults: a small model that trains on a laptop CPU. */
export const ModelFields = z.object({
  vocabSize: z.number().int().positive().default(VOCAB_SIZE),
  /** Longest sequence the model sees (learned position embeddings have this many rows). */
  contextLength: z.number().int().positive().default(256),
  dModel: z.number().int().positive().default(128),
  nLayers: z.number().int().positive().default(4),
  nHeads: z.number().int().positive().default(4),
  /** MLP hidden width. */
  dFF: z.number().int().positive().default(512),
  /** Output head reuses the token embedding matrix (transposed). */
  tieEmbeddings: z.boolean().default(true),
  layerNormEps: z.number().positive().default(1e-5),
  /** Std of the normal init for weight matrices and embeddings (GPT-2: 0.02). */
  initStd: z.number().positive().default(0.02),
  /** Characters beyond printable ASCII in this model's vocabulary, in id order (a jsonl file's own; set when the file is pinned). */
  extraChars: z.string().min(1).optional(),
});

/** The model rules on any object schema with the model's fields (this one, or a campaign's `model` with more). */
export function withModelRules<S extends z.ZodType<z.output<typeof ModelFields>>>(fields: S) {
  return (
    fields
      // The vocabulary follows from the alphabet: the checkpoint records which characters its extra embedding rows are.
      .transform((c) => (c.extraChars ? { ...c, vocabSize: VOCAB_SIZE + [...c.extraChars].length } : c))
      .refine((c) => c.dModel % c.nHeads === 0, { message: 'dModel must be divisible by nHeads' })
  );
}

export const ModelConfigSchema = withModelRules(ModelFields);

export type ModelConfig = z.infer<typeof ModelConfigSchema>;

export function modelConfig(partial: Partial<ModelConfig> = {}): ModelConfig {
  return ModelConfigSchema.parse(partial);
}

/** A warm start must share the campaign's alphabet: the same ids must mean the same characters. */
export function alphabetMismatch(init: ModelConfig, want: ModelConfig): string | null {
  const [a, b] = [init.extraChars ?? '', want.extraChars ?? ''];
  if (a === b) return null;
  const show = (x: string) => (x ? `"${x}"` : 'none');
  return `model.extraChars: the warm-start checkpoint's tokenizer has extra characters ${show(a)}, this campaign's data needs ${show(b)}; warm-start from a checkpoint trained on the same file, or start fresh`;
}
