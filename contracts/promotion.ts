/** What crosses between the scheduled-campaign workflow and its promotion activities. */
import type { CheckpointRef } from '../storage/manifest';

export interface Promotion {
  schedule: string;
  checkpoint: CheckpointRef;
  accuracy: number;
  campaignId: string;
  promotedAt: string;
}

export interface PromoteInput extends Omit<Promotion, 'promotedAt'> {
  /**
   * The checkpoint id of the promotion the caller compared against (null: none), when it says so:
   * while the pointer still names it, the caller's decision stands (its gate may be negative).
   */
  expected?: string | null;
  /** The caller's gate over a promotion it did not compare against (default 0: strictly better). */
  minImprovement?: number;
}

/** The CPU queue's promotion activities (activities/promotion.ts implements them). */
export interface PromotionActivities {
  getPromoted(input: { schedule: string }): Promise<Promotion | null>;
  promote(input: PromoteInput): Promise<Promotion>;
}
