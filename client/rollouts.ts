/**
 * The trainer's side of a workers-mode RL step: the step's rollout workflow, started (or, for a
 * retried trainer, attached to) by its id. The workflow type name is `rolloutWorkflow`'s.
 */
import type { Client, WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import { QUEUES } from '../contracts/queues';
import type { RolloutStepInput } from '../contracts/rollout';
import { rolloutWorkflow } from '../workflows/rollout';

export type RolloutStepHandle = WorkflowHandleWithFirstExecutionRunId<typeof rolloutWorkflow>;

/**
 * Starts the step's rollout workflow on the rollout queue. A start with the id of a running one
 * returns that run; one that closed (its objects may be gone) runs again, to the same bits.
 */
export function startRolloutStep(client: Client, workflowId: string, input: RolloutStepInput): Promise<RolloutStepHandle> {
  return client.workflow.start(rolloutWorkflow, {
    workflowId,
    taskQueue: QUEUES.rollout,
    args: [input],
    workflowIdConflictPolicy: 'USE_EXISTING',
    workflowIdReusePolicy: 'ALLOW_DUPLICATE',
  });
}
