/**
 * The reproduction as durable child campaigns: per seed the base campaign, then its ablations,
 * each starting RL from the base's SFT stage. A crashed worker or a restarted CLI loses nothing:
 * finished children keep their results and a running one resumes from its last checkpoint. The
 * plan and every finished campaign's result are stored in S3 (reproduce/records.ts), where the
 * report is built from.
 */
import { defineQuery, executeChild, patched, proxyActivities, setHandler } from '@temporalio/workflow';
import { z } from 'zod';
import type { ReproductionActivities } from '../contracts/reproduce';
import { CampaignConfigSchema } from '../config/campaign';
import { matchBaseSampling, type PlannedCampaign, type ReproductionPlan } from '../reproduce/plan';
import { planKey, runKey, type Host, type PlanRecord } from '../reproduce/records';
import { campaignWorkflow, type CampaignInput } from './campaign';
import { campaignIdOf, type ReproduceRun } from '../contracts/reproduce';
import { QUEUES } from '../contracts/queues';
import { ACTIVITY_RETRY } from './retry';
import { parseOrFail } from './validate';

export interface ReproduceInput {
  id: string;
  plan: ReproductionPlan;
  host?: Host;
}

export interface ReproduceProgress {
  done: { seed: number; arm: string; campaignId: string }[];
  running: string | null;
  total: number;
}

export const reproduceProgressQuery = defineQuery<ReproduceProgress>('progress');

const records = proxyActivities<ReproductionActivities>({ taskQueue: QUEUES.cpu, startToCloseTimeout: '5m', retry: ACTIVITY_RETRY });

const PlannedCampaignSchema = z.looseObject({ seed: z.number().int().min(0), arm: z.string().min(1), config: CampaignConfigSchema });

/** Every planned campaign's config is checked up front: a bad ablation fails the reproduction before its base campaign runs. */
const ReproduceInputSchema = z.looseObject({
  id: z.string().min(1),
  plan: z.looseObject({ base: z.array(PlannedCampaignSchema), ablations: z.array(PlannedCampaignSchema) }),
  host: z.looseObject({ machine: z.string(), backend: z.string() }).optional(),
});

export async function reproduceWorkflow(input: ReproduceInput): Promise<ReproduceRun[]> {
  // A refused input fails the workflow (not its task, which Temporal would retry forever), naming the fields.
  // The children get the configs as planned; each campaign parses its own.
  parseOrFail(ReproduceInputSchema, input, 'reproduction input');
  const { plan } = input;
  // Reproductions started before the records replay without them.
  const recorded = patched('reproduction-records');
  const record: PlanRecord = { id: input.id, plan, ...(input.host && { host: input.host }) };
  // Written while the first campaign runs; awaited before any run's record, so a run is never stored without its plan.
  const planStored = recorded ? records.storeReproductionRecord({ key: planKey(input.id), value: record }) : Promise.resolve();
  planStored.catch(() => undefined); // its failure surfaces where it is awaited
  const runs: ReproduceRun[] = [];
  let running: string | null = null;
  setHandler(reproduceProgressQuery, () => ({
    done: runs.map(({ seed, arm, campaignId }) => ({ seed, arm, campaignId })),
    running,
    total: plan.base.length + plan.ablations.length,
  }));
  const run = async (c: PlannedCampaign, args: Omit<CampaignInput, 'campaignId'>) => {
    const campaignId = campaignIdOf(input.id, c);
    running = campaignId;
    const started = Date.now();
    const result = await executeChild(campaignWorkflow, { workflowId: campaignId, taskQueue: QUEUES.cpu, args: [{ campaignId, ...args }] });
    const done: ReproduceRun = {
      seed: c.seed,
      arm: c.arm,
      campaignId,
      seconds: (Date.now() - started) / 1000,
      finishedAt: new Date().toISOString(),
      result,
    };
    await planStored;
    if (recorded) await records.storeReproductionRecord({ key: runKey(input.id, c), value: done });
    runs.push(done);
    return result;
  };
  // One campaign at a time: on one machine parallel campaigns only share the same cores.
  for (const base of plan.base) {
    const result = await run(base, { config: base.config, preset: 'quick' });
    for (const ablation of plan.ablations.filter((a) => a.seed === base.seed)) {
      const config = ablation.matchSampling ? matchBaseSampling(ablation.config, result) : ablation.config;
      await run(ablation, { config, fromSft: result.sftStage });
    }
  }
  running = null;
  await planStored;
  return runs;
}
