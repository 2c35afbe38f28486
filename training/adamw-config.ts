/** AdamW hyper-parameters: a pure schema, so configs that embed it stay free of tfjs. */
import { z } from 'zod';

export const AdamWConfigSchema = z.object({
  beta1: z.number().min(0).lt(1).default(0.9),
  beta2: z.number().min(0).lt(1).default(0.95),
  eps: z.number().positive().default(1e-8),
  weightDecay: z.number().min(0).default(0.1),
});
export type AdamWConfig = z.infer<typeof AdamWConfigSchema>;
