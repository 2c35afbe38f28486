/**
 * The task sections of a campaign config (splits, teacher): pure zod, apart from the task
 * generators, so the workflow bundle that validates configs does not carry them.
 */
import { z } from 'zod';

/** Hash splits: each problem's split and pool follow from its id alone. */
export const SplitConfig = z
  .object({
    val: z.number().min(0).max(1).default(0.1),
    test: z.number().min(0).max(1).default(0.1),
    /** Share of train that is SFT prompts; the rest are RL prompts. */
    sft: z.number().min(0).max(1).default(0.5),
  })
  .refine((c) => c.val + c.test < 1, { message: 'val + test must leave some train' });
export type SplitConfig = z.infer<typeof SplitConfig>;

/** The programmatic teacher's trace mix (T1: trial and error, then self-verification). */
export const TeacherConfig = z.object({
  /** weights[k] is the relative frequency of traces with k failed attempts. */
  failedAttemptWeights: z
    .array(z.number().nonnegative())
    .min(1)
    .refine((w) => w.some((x) => x > 0), { message: 'some weight must be positive' })
    .default([0.25, 0.35, 0.25, 0.15]),
  /** Arithmetic: chance that a step in a failed attempt slips. */
  slipRate: z.number().min(0).max(1).default(0.3),
  /** Longest prompt + trace in characters; 252 = a 256-token context less BOS, RESP, ANS, EOS. */
  maxChars: z.number().int().positive().default(252),
});
export type TeacherConfig = z.infer<typeof TeacherConfig>;
