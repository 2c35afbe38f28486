/**
 * A workflow that runs one activity through `pausable` and then waits at a `boundary`, with pause
 * and resume signals that set its flag: pausable.test.ts bundles this file on its own.
 */
import { CancellationScope, defineSignal, proxyActivities, setHandler } from '@temporalio/workflow';
import { boundary, pausable } from '../../../workflows/pausable';

export interface ProbeActivities {
  /** Returns its attempt number (1-based) once the test lets it finish. */
  work(): Promise<number>;
}

const { work } = proxyActivities<ProbeActivities>({ startToCloseTimeout: '1m', heartbeatTimeout: '10s', retry: { maximumAttempts: 1 } });

export const pauseProbe = defineSignal('pause');
export const resumeProbe = defineSignal('resume');

export async function pausableProbe(): Promise<number> {
  const flag = { paused: false };
  setHandler(pauseProbe, () => void (flag.paused = true));
  setHandler(resumeProbe, () => void (flag.paused = false));
  const attempt = await pausable(flag, CancellationScope.current(), work);
  await boundary(flag);
  return attempt;
}
