/** LoRA's hyper-parameters (model/lora.ts): tf-free, so campaign configs (and the workflow bundle) can name them. */
import { z } from 'zod';

/** Projections an adapter can target, in the (canonical) order of a layer's parameters. */
export const LORA_TARGETS = ['q', 'k', 'v', 'o', 'gate', 'up', 'down'] as const;
export type LoraTarget = (typeof LORA_TARGETS)[number];

export const LoraConfigSchema = z.object({
  /** r: the adapters' inner width. */
  rank: z.number().int().min(1).default(8),
  /** lora_alpha: the update is scaled by alpha / rank. PEFT's default, 8 (not 2*rank). */
  alpha: z.number().positive().default(8),
  /**
   * lora_dropout: probability of zeroing an element of an adapter's input in SFT. RL updates run without
   * it: their log-probs must be those of the policy that sampled (the KL, the PPO ratio).
   */
  dropout: z.number().min(0).lt(1).default(0),
  /** target_modules: which projections of every layer get an adapter. */
  targets: z
    .array(z.enum(LORA_TARGETS))
    .min(1)
    .refine((t) => new Set(t).size === t.length, { message: 'targets must not repeat' })
    .default(['q', 'v']),
});
export type LoraConfig = z.infer<typeof LoraConfigSchema>;
