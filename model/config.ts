import { z } from 'zod';
import { VOCAB_SIZE } from './tokenizer';

/** Decoder-only transformer hyperparameters. Defaults: a small model that trains on a laptop CPU. */
export const ModelConfigSchema = z
  .object({
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
  })
  .refine((c) => c.dModel % c.nHeads === 0, { message: 'dModel must be divisible by nHeads' });

export type ModelConfig = z.infer<typeof ModelConfigSchema>;

export function modelConfig(partial: Partial<ModelConfig> = {}): ModelConfig {
  return ModelConfigSchema.parse(partial);
}
