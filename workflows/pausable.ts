/**
 * Pausing a workflow at step boundaries. Whatever holds the `paused` flag (the campaign's state,
 * carried across continue-as-new) is read live: a signal handler sets it, these functions wait on
 * it. Workflow code only (they use the workflow's conditions and cancellation scopes).
 */
import { CancellationScope, condition, isCancellation, log } from '@temporalio/workflow';

/** What a pause reads: a flag that handlers set and clear. */
export interface PauseFlag {
  readonly paused: boolean;
}

/** A step boundary: returns at once unless paused, else when resumed. */
export async function boundary(flag: PauseFlag): Promise<void> {
  if (flag.paused) log.info('paused; waiting for resume');
  await condition(() => !flag.paused);
}

/**
 * Runs a training activity that a pause interrupts at its next step boundary: the activity
 * commits an intra-activity checkpoint and stops; after resume it runs again from there.
 * `root`: the workflow's own scope; once it is cancelled, a cancellation ends the run even while
 * paused. Any other failure, or a cancellation while not paused, is thrown.
 */
export async function pausable<T>(flag: PauseFlag, root: CancellationScope, fn: () => Promise<T>): Promise<T> {
  for (;;) {
    await boundary(flag);
    const scope = new CancellationScope();
    const watcher = new CancellationScope();
    watcher
      .run(() => condition(() => flag.paused))
      .then(
        () => scope.cancel(),
        () => undefined,
      );
    try {
      return await scope.run(fn);
    } catch (e) {
      if (!(isCancellation(e) && flag.paused && !root.consideredCancelled)) throw e;
    } finally {
      watcher.cancel();
    }
  }
}
