/**
 * The typed Temporal contract for every caller (CLI, bench, tests): workflows start by function,
 * signals, queries and updates go through the definitions that `workflows/` exports, and results
 * come back typed. No workflow or handler name is written as a string outside `workflows/`.
 */
import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  type Client,
  type WorkflowExecutionDescription,
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
import { QUEUES } from '../contracts/queues';
import { reproduceProgressQuery, reproduceWorkflow, type ReproduceInput, type ReproduceProgress } from '../workflows/reproduce';
import { scheduledCampaignWorkflow, type ScheduledInput } from '../workflows/scheduled';
import { HyperparameterError, type CampaignConfig } from '../config/campaign';
import { hashOf } from '../util/hash';

export type CampaignHandle = WorkflowHandle<typeof campaignWorkflow>;
export type ReproductionHandle = WorkflowHandle<typeof reproduceWorkflow>;

/** Memo key of the campaign's config hash: tells a retried start of this campaign from another one reusing its id. */
export const CONFIG_MEMO = 't1ConfigSha256';

/** Temporal task-queue priority: 1 runs first, 5 last; unset = 3. Activities and child workflows inherit it. */
export const PRIORITY_RANGE = { min: 1, max: 5 } as const;

export interface StartOptions {
  priority?: number;
}

/**
 * Starts a campaign; its workflow id is the campaign id. A start with the id of a running campaign
 * returns that campaign (no second execution, whoever calls); an id whose campaign has closed is
 * refused (WorkflowExecutionAlreadyStartedError), so a campaign never runs twice under one id.
 */
export function startCampaign(
  client: Client,
  input: CampaignInput,
  opts: StartOptions = {},
): Promise<WorkflowHandleWithFirstExecutionRunId<typeof campaignWorkflow>> {
  return client.workflow.start(campaignWorkflow, {
    taskQueue: QUEUES.cpu,
    workflowId: input.campaignId,
    args: [input],
    workflowIdConflictPolicy: 'USE_EXISTING',
    workflowIdReusePolicy: 'REJECT_DUPLICATE',
    memo: { [CONFIG_MEMO]: hashOf(input.config) },
    ...(opts.priority !== undefined ? { priority: { priorityKey: opts.priority } } : {}),
  });
}

/** What `ensureCampaign` found or did; `handle` follows the campaign across continue-as-new. */
export type EnsuredCampaign =
  /** This call started it (or a concurrent start of the same campaign did: one execution either way). */
  | { outcome: 'started'; handle: CampaignHandle; runId: string }
  /** It was already running with this config. */
  | { outcome: 'running'; handle: CampaignHandle; runId: string; startTime: Date }
  /** It ran under this id with this config and has closed (completed, failed, cancelled, ...); nothing was started. */
  | { outcome: 'closed'; handle: CampaignHandle; runId: string; status: string; startTime: Date; closeTime?: Date }
  /** The id belongs to a campaign with another config; nothing was started. */
  | { outcome: 'conflict'; handle: CampaignHandle; runId: string; status: string; startTime: Date };

/**
 * Idempotent start: the campaign `input` names exists once, however often (or concurrently) this is
 * called. A campaign started before its config hash was recorded counts as the same config.
 */
export async function ensureCampaign(client: Client, input: CampaignInput, opts: StartOptions = {}): Promise<EnsuredCampaign> {
  const handle = campaignHandle(client, input.campaignId);
  const existing = await describeIfAny(handle);
  if (existing) return found(handle, existing, input);
  try {
    const started = await startCampaign(client, input, opts);
    // A concurrent start with another config may have won the id: only the memo tells.
    const d = await handle.describe();
    return d.runId === started.firstExecutionRunId && sameConfig(d, input)
      ? { outcome: 'started', handle, runId: started.firstExecutionRunId }
      : found(handle, d, input);
  } catch (e) {
    if (!(e instanceof WorkflowExecutionAlreadyStartedError)) throw e;
    // It closed between our describe and our start.
    return found(handle, await handle.describe(), input);
  }
}

function sameConfig(d: WorkflowExecutionDescription, input: CampaignInput): boolean {
  const recorded = d.memo?.[CONFIG_MEMO];
  return recorded === undefined || recorded === hashOf(input.config);
}

function found(handle: CampaignHandle, d: WorkflowExecutionDescription, input: CampaignInput): EnsuredCampaign {
  const { runId, startTime } = d;
  const status = d.status.name;
  if (!sameConfig(d, input)) return { outcome: 'conflict', handle, runId, status, startTime };
  if (status === 'RUNNING') return { outcome: 'running', handle, runId, startTime };
  return { outcome: 'closed', handle, runId, status, startTime, closeTime: d.closeTime };
}

async function describeIfAny(h: CampaignHandle): Promise<WorkflowExecutionDescription | undefined> {
  try {
    return await h.describe();
  } catch (e) {
    if (e instanceof WorkflowNotFoundError) return undefined;
    throw e;
  }
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
