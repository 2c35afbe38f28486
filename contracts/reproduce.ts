/** What crosses between the reproduction workflow, its activities and records, the CLI and the reports. */
import type { CampaignResult } from './campaign';

/** The campaign id of one planned campaign (a seed and an arm) of reproduction `id`. */
export const campaignIdOf = (id: string, c: { seed: number; arm: string }) => `${id}-s${c.seed}-${c.arm}`;

export interface ReproduceRun {
  seed: number;
  arm: string;
  campaignId: string;
  /** Wall time of the campaign by the workflow clock (recorded in history, so replay gives the same). */
  seconds: number;
  /** When it finished (ISO, workflow clock). */
  finishedAt: string;
  result: CampaignResult;
}

/** The reproduce workflow's record activity (activities/reproduce.ts implements it): each record written once. */
export interface ReproductionActivities {
  storeReproductionRecord(input: { key: string; value: unknown }): Promise<void>;
}
