/**
 * The promotion gate of nightly retraining: a scheduled campaign's final checkpoint replaces the
 * schedule's promoted one only if its held-out accuracy beats it by more than
 * `promotion.minImprovement` (which may be negative: a tolerated loss). The first one is always
 * promoted. Pure: no Temporal, no I/O (the workflow bundle imports it).
 */

/** Whether a checkpoint of held-out `accuracy` is promoted over `promoted` (null: none yet). */
export function promotionDue(accuracy: number, promoted: { accuracy: number } | null, minImprovement: number): boolean {
  return !promoted || accuracy > promoted.accuracy + minImprovement;
}
