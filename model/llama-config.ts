import { z } from 'zod';

/**
 * The Llama family's hyper-parameters (Llama, Mistral, Qwen2, SmolLM2 …): pre-norm blocks of RMSNorm,
 * grouped-query attention with rotary position embeddings, and a SwiGLU MLP. Read from a GGUF's
 * metadata or a Hugging Face `config.json`; written back into both on export.
 */
export const LlamaConfigSchema = z
  .object({
    /** transformers' class name, kept so an export says what it is (`LlamaForCausalLM`, `Qwen2ForCausalLM`, …). */
    architecture: z.enum(['LlamaForCausalLM', 'MistralForCausalLM', 'Qwen2ForCausalLM']),
    vocabSize: z.number().int().positive(),
    dModel: z.number().int().positive(),
    nLayers: z.number().int().positive(),
    nHeads: z.number().int().positive(),
    /** Key/value heads (grouped-query attention): nHeads is a multiple of it. */
    nKvHeads: z.number().int().positive(),
    headDim: z.number().int().positive(),
    /** SwiGLU hidden width. */
    dFF: z.number().int().positive(),
    /** Longest sequence the model was trained for (RoPE itself has no table of positions). */
    contextLength: z.number().int().positive(),
    ropeTheta: z.number().positive(),
    /** Llama 3's frequency-dependent RoPE scaling (rope_type "llama3"); absent: plain RoPE. */
    ropeScaling: z
      .object({
        factor: z.number().positive(),
        lowFreqFactor: z.number().positive(),
        highFreqFactor: z.number().positive(),
        originalContextLength: z.number().int().positive(),
      })
      .optional(),
    rmsEps: z.number().positive(),
    /** The output head is the token embedding matrix (no separate `lm_head`). */
    tieEmbeddings: z.boolean(),
    /** q, k and v projections carry biases (Qwen2). */
    qkvBias: z.boolean(),
  })
  .refine((c) => c.nHeads % c.nKvHeads === 0, { message: 'nHeads must be a multiple of nKvHeads', path: ['nKvHeads'] })
  .refine((c) => c.headDim % 2 === 0, { message: 'headDim must be even (RoPE rotates pairs)', path: ['headDim'] });

export type LlamaConfig = z.infer<typeof LlamaConfigSchema>;
