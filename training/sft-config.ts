/**
 * SFT hyper-parameters: the one schema, the campaign's `sft` section and the trainer's input alike.
 * Pure zod (no tfjs), so configs that embed it stay free of the model code.
 */
import { z } from 'zod';

const int = (min = 0) => z.number().int().min(min);

export const SftConfigSchema = z
  .object({
    steps: int(1).default(300),
    /** Sequences per optimizer update. */
    batchSize: int(1).default(16),
    /** Peak learning rate, after `warmupSteps` of linear warmup; cosine decay to `minLr` at `steps`. */
    lr: z.number().positive().default(3e-3),
    minLr: z.number().min(0).default(1e-4),
    warmupSteps: int().default(20),
    weightDecay: z.number().min(0).default(0.01),
    /** Global gradient-norm clip. */
    gradClip: z.number().positive().default(1),
    /** Sequences per forward/backward pass (default: batchSize); gradients accumulate over the passes. */
    microBatchSize: int(1).optional(),
    /** Validation loss and greedy accuracy every this many steps (and at the last). */
    evalEvery: int(1).default(100),
  })
  .refine((s) => s.microBatchSize === undefined || s.batchSize % s.microBatchSize === 0, {
    message: 'batchSize must be a multiple of microBatchSize',
    path: ['microBatchSize'],
  });
export type SftConfig = z.infer<typeof SftConfigSchema>;
/** What callers pass: any field may be left out (defaults above). */
export type SftConfigInput = z.input<typeof SftConfigSchema>;
