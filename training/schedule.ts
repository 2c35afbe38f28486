/**
 * Linear warmup from 0 to `lr`, then cosine decay to `minLr` at `totalSteps`, then flat. The values
 * (and their defaults) are SFT's config (training/sft-config.ts, scheduleOf in training/sft.ts).
 */
export interface LrSchedule {
  lr: number;
  minLr: number;
  warmupSteps: number;
  totalSteps: number;
}

/** Learning rate for update number `step` (0-based). */
export function lrAt(step: number, s: LrSchedule): number {
  if (step < s.warmupSteps) return (s.lr * (step + 1)) / s.warmupSteps;
  if (step >= s.totalSteps) return s.minLr;
  const progress = (step - s.warmupSteps) / Math.max(1, s.totalSteps - s.warmupSteps);
  return s.minLr + 0.5 * (s.lr - s.minLr) * (1 + Math.cos(Math.PI * progress));
}
