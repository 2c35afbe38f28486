import { z } from 'zod';

/** Linear warmup from 0 to `lr`, then cosine decay to `minLr` at `totalSteps`, then flat. */
export const LrScheduleSchema = z.object({
  lr: z.number().positive().default(1e-3),
  minLr: z.number().min(0).default(1e-4),
  warmupSteps: z.number().int().min(0).default(100),
  totalSteps: z.number().int().positive().default(5000),
});
export type LrSchedule = z.infer<typeof LrScheduleSchema>;

/** Learning rate for update number `step` (0-based). */
export function lrAt(step: number, s: LrSchedule): number {
  if (step < s.warmupSteps) return (s.lr * (step + 1)) / s.warmupSteps;
  if (step >= s.totalSteps) return s.minLr;
  const progress = (step - s.warmupSteps) / Math.max(1, s.totalSteps - s.warmupSteps);
  return s.minLr + 0.5 * (s.lr - s.minLr) * (1 + Math.cos(Math.PI * progress));
}
