/**
 * Nightly retraining: a Schedule starts this workflow; it warm-starts a campaign from the
 * schedule's promoted checkpoint and promotes the new final checkpoint only if it beats the
 * promoted one on held-out evaluation by the configured gate (rules/promotion.ts).
 */
import { executeChild, proxyActivities, workflowInfo } from '@temporalio/workflow';
import { z } from 'zod';
import type { PromotionActivities } from '../contracts/promotion';
import { CampaignConfigSchema, type CampaignConfig } from '../config/campaign';
import { promotionDue } from '../rules/promotion';
import { campaignWorkflow } from './campaign';
import { QUEUES } from '../contracts/queues';
import { ACTIVITY_RETRY } from './retry';
import { parseOrFail } from './validate';

const cpu = proxyActivities<PromotionActivities>({
  taskQueue: QUEUES.cpu,
  startToCloseTimeout: '2m',
  retry: ACTIVITY_RETRY,
});

export interface ScheduledInput {
  schedule: string;
  config: CampaignConfig;
  preset?: string;
}

const ScheduledInputSchema = z.looseObject({
  schedule: z.string().min(1),
  config: CampaignConfigSchema,
  preset: z.string().optional(),
});

export async function scheduledCampaignWorkflow(input: ScheduledInput) {
  // Checked before anything runs: a Schedule whose config a later schema refuses fails each night, naming the field.
  const { config } = parseOrFail(ScheduledInputSchema, input, 'scheduled campaign input');
  const promoted = await cpu.getPromoted({ schedule: input.schedule });
  // Schedules append the scheduled time to the workflow id, which makes the campaign id unique.
  const campaignId = workflowInfo()
    .workflowId.replace(/[^A-Za-z0-9._-]/g, '-')
    .slice(0, 64);
  const result = await executeChild(campaignWorkflow, {
    workflowId: `${campaignId}-campaign`,
    taskQueue: QUEUES.cpu,
    args: [{ campaignId, config: input.config, preset: input.preset, warmStart: promoted?.checkpoint ?? null }],
  });
  const accuracy = result.results.final.accuracy;
  const better = promotionDue(accuracy, promoted, config.promotion.minImprovement);
  // `expected`: the promotion this decision compared against; if another run moved the pointer meanwhile, promote re-decides.
  if (better)
    await cpu.promote({
      schedule: input.schedule,
      checkpoint: result.checkpoints.final,
      accuracy,
      campaignId,
      expected: promoted?.checkpoint.id ?? null,
      minImprovement: config.promotion.minImprovement,
    });
  return { ...result, promoted: better, previous: promoted ? { checkpoint: promoted.checkpoint, accuracy: promoted.accuracy } : null };
}
