/**
 * The typed Temporal contract for every caller (CLI, bench, tests): workflows start by function,
 * signals, queries and updates go through the definitions that `workflows/` exports, and results
 * come back typed. No workflow or handler name is written as a string outside `workflows/`.
 */
import {
  WorkflowUpdateFailedError,
  type Client,
  type ScheduleOptionsStartWorkflowAction,
  type WorkflowHandle,
  type WorkflowHandleWithFirstExecutionRunId,
} from '@temporalio/client';
import {
  campaignWorkflow,
  pauseSignal,
  resumeSignal,
  setHyperparametersUpdate,
  statusQuery,
  type CampaignInput,
  type CampaignStatus,
} from '../workflows/campaign';
import { proofWorkflow } from '../workflows/proof';
import { QUEUES } from '../workflows/queues';
import { reproduceProgressQuery, reproduceWorkflow, type ReproduceInput, type ReproduceProgress } from '../workflows/reproduce';
import { scheduledCampaignWorkflow, type ScheduledInput } from '../workflows/scheduled';
import { HyperparameterError, type CampaignConfig } from '../config/campaign';

export type CampaignHandle = WorkflowHandle<typeof campaignWorkflow>;
export type ReproductionHandle = WorkflowHandle<typeof reproduceWorkflow>;

/** Starts a campaign; its workflow id is the campaign id. */
export function startCampaign(
  client: Client,
  input: CampaignInput,
): Promise<WorkflowHandleWithFirstExecutionRunId<typeof campaignWorkflow>> {
  return client.workflow.start(campaignWorkflow, { taskQueue: QUEUES.cpu, workflowId: input.campaignId, args: [input] });
}

export function campaignHandle(client: Client, campaignId: string, runId?: string): CampaignHandle {
  return client.workflow.getHandle<typeof campaignWorkflow>(campaignId, runId);
}

/** Every campaign the namespace holds, newest first. */
export function listCampaigns(client: Client) {
  return client.workflow.list({ query: `WorkflowType = '${campaignWorkflow.name}'` });
}

export const campaignStatus = (h: WorkflowHandle): Promise<CampaignStatus> => h.query(statusQuery);
export const pauseCampaign = (h: WorkflowHandle): Promise<void> => h.signal(pauseSignal);
export const resumeCampaign = (h: WorkflowHandle): Promise<void> => h.signal(resumeSignal);
/**
 * Changes apply at the next epoch boundary; returns the effective config. A change the workflow's
 * validator rejects throws a HyperparameterError naming the field (it never enters history).
 */
export async function setHyperparameters(h: WorkflowHandle, changes: Record<string, unknown>): Promise<CampaignConfig> {
  try {
    return await h.executeUpdate(setHyperparametersUpdate, { args: [changes] });
  } catch (e) {
    if (e instanceof WorkflowUpdateFailedError && e.cause) throw new HyperparameterError(e.cause.message);
    throw e;
  }
}

export function startReproduction(client: Client, input: ReproduceInput): Promise<ReproductionHandle> {
  return client.workflow.start(reproduceWorkflow, { taskQueue: QUEUES.cpu, workflowId: input.id, args: [input] });
}

export function reproductionHandle(client: Client, id: string): ReproductionHandle {
  return client.workflow.getHandle<typeof reproduceWorkflow>(id);
}

export const reproductionProgress = (h: WorkflowHandle): Promise<ReproduceProgress> => h.query(reproduceProgressQuery);

/** What a retraining schedule starts: the scheduled campaign workflow, named after the schedule. */
export function scheduledCampaignAction(input: ScheduledInput): ScheduleOptionsStartWorkflowAction<typeof scheduledCampaignWorkflow> {
  return {
    type: 'startWorkflow',
    workflowType: scheduledCampaignWorkflow,
    workflowId: input.schedule,
    taskQueue: QUEUES.cpu,
    args: [input],
  };
}

/** The wiring proof: a CPU activity writes a checkpoint and a GPU activity reads it back. */
export function runProof(client: Client, input: { campaign: string; seed: number }) {
  return client.workflow.execute(proofWorkflow, { taskQueue: QUEUES.cpu, workflowId: input.campaign, args: [input] });
}
