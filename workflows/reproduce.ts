/**
 * The reproduction as durable child campaigns: per seed the base campaign, then its ablations,
 * each starting RL from the base's SFT stage. A crashed worker or a restarted CLI loses nothing:
 * finished children keep their results and a running one resumes from its last checkpoint.
 */
import { defineQuery, executeChild, setHandler } from '@temporalio/workflow';
import { z } from 'zod';
import { CampaignConfigSchema } from '../config/campaign';
import type { PlannedCampaign, ReproductionPlan } from '../reproduce/plan';
import { campaignWorkflow } from './campaign';
import type { CampaignResult } from './campaign-types';
import { QUEUES } from './queues';
import { parseOrFail } from './validate';

export interface ReproduceInput {
  id: string;
  plan: ReproductionPlan;
}

export interface ReproduceRun {
  seed: number;
  arm: string;
  campaignId: string;
  result: CampaignResult;
}

export interface ReproduceProgress {
  done: { seed: number; arm: string; campaignId: string }[];
  running: string | null;
  total: number;
}

export const reproduceProgressQuery = defineQuery<ReproduceProgress>('progress');

export const campaignIdOf = (id: string, c: Pick<PlannedCampaign, 'seed' | 'arm'>) => `${id}-s${c.seed}-${c.arm}`;

const PlannedCampaignSchema = z.looseObject({ seed: z.number().int().min(0), arm: z.string().min(1), config: CampaignConfigSchema });

/** Every planned campaign's config is checked up front: a bad ablation fails the reproduction before its base campaign runs. */
const ReproduceInputSchema = z.looseObject({
  id: z.string().min(1),
  plan: z.looseObject({ base: z.array(PlannedCampaignSchema), ablations: z.array(PlannedCampaignSchema) }),
});

export async function reproduceWorkflow(input: ReproduceInput): Promise<ReproduceRun[]> {
  // A refused input fails the workflow (not its task, which Temporal would retry forever), naming the fields.
  // The children get the configs as planned; each campaign parses its own.
  parseOrFail(ReproduceInputSchema, input, 'reproduction input');
  const { plan } = input;
  const runs: ReproduceRun[] = [];
  let running: string | null = null;
  setHandler(reproduceProgressQuery, () => ({
    done: runs.map(({ seed, arm, campaignId }) => ({ seed, arm, campaignId })),
    running,
    total: plan.base.length + plan.ablations.length,
  }));
  // One campaign at a time: on one machine parallel campaigns only share the same cores.
  for (const base of plan.base) {
    const campaignId = campaignIdOf(input.id, base);
    running = campaignId;
    const result = await executeChild(campaignWorkflow, {
      workflowId: campaignId,
      taskQueue: QUEUES.cpu,
      args: [{ campaignId, config: base.config, preset: 'quick' }],
    });
    runs.push({ seed: base.seed, arm: base.arm, campaignId, result });
    for (const ablation of plan.ablations.filter((a) => a.seed === base.seed)) {
      const id = campaignIdOf(input.id, ablation);
      running = id;
      const r = await executeChild(campaignWorkflow, {
        workflowId: id,
        taskQueue: QUEUES.cpu,
        args: [{ campaignId: id, config: ablation.config, fromSft: result.sftStage }],
      });
      runs.push({ seed: ablation.seed, arm: ablation.arm, campaignId: id, result: r });
    }
  }
  running = null;
  return runs;
}
