/**
 * The reproduce workflow's records in S3 (reproduce/records.ts): each written once. A retried write
 * of the same record is a no-op; a different record under the key (a reproduction id used twice)
 * fails the reproduction rather than leave a report that mixes two runs.
 */
import type { ReproductionActivities } from '../contracts/reproduce';
import type { CheckpointStore } from '../storage/checkpoints';
import { UserError } from '../util/errors';

export class ReproductionRecordConflictError extends UserError {
  override name = 'ReproductionRecordConflictError';
}

export function reproductionActivities(store: CheckpointStore): ReproductionActivities {
  return {
    async storeReproductionRecord(input: { key: string; value: unknown }): Promise<void> {
      await store.putJsonOnce(input.key, input.value);
      const stored = await store.getJson<unknown>(input.key);
      if (JSON.stringify(stored) !== JSON.stringify(input.value))
        throw new ReproductionRecordConflictError(
          `${input.key} holds another record: this reproduction id was used before; start with another --id`,
        );
    },
  };
}
