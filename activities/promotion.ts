/**
 * The promoted checkpoint of a schedule: a small pointer object (not a checkpoint, so replacing it
 * is allowed). The checkpoint it names is marked keep, so retention never removes it.
 *
 * The pointer moves only by a conditional write: If-Match on the ETag read (If-None-Match: * for
 * the first), so two overlapping scheduled runs cannot make the worse model win. A write refused
 * (412) means another run moved the pointer in between: re-read and re-decide.
 */
import { PutObjectCommand } from '@aws-sdk/client-s3';
import type { CheckpointStore } from '../storage/checkpoints';
import type { PromoteInput, Promotion, PromotionActivities } from '../contracts/promotion';
import { promotionDue } from '../rules/promotion';

const key = (schedule: string) => `promoted/${schedule}.json`;

/** Tries a conditional write makes before giving up (each refusal means another run promoted in between). */
const MAX_TRIES = 20;

export function promotionActivities(store: CheckpointStore): PromotionActivities {
  /** The pointer and its ETag, or null when none was written. */
  async function read(schedule: string): Promise<{ promotion: Promotion; etag: string } | null> {
    const r = await store.getJsonTagged<Promotion>(key(schedule));
    return r ? { promotion: r.value, etag: r.etag } : null;
  }

  return {
    async getPromoted(input: { schedule: string }): Promise<Promotion | null> {
      return (await read(input.schedule))?.promotion ?? null;
    },

    /**
     * Points the schedule at `p.checkpoint` unless the pointer names one at least as good by now;
     * returns the promotion in force afterwards (this one, or the better one that stays).
     */
    async promote(input: PromoteInput): Promise<Promotion> {
      const { expected, minImprovement = 0, ...p } = input;
      const wasKept = await store.isKept(p.checkpoint.id);
      // Kept before the pointer can name it, so retention never removes a promoted checkpoint.
      await store.markKeep(p.checkpoint.id);
      for (let tries = 0; tries < MAX_TRIES; tries++) {
        const current = await read(p.schedule);
        if (current?.promotion.checkpoint.id === p.checkpoint.id) return current.promotion; // a retry of this promotion
        const asDecided = expected !== undefined && (current?.promotion.checkpoint.id ?? null) === expected;
        if (current && !asDecided && !promotionDue(p.accuracy, current.promotion, minImprovement)) {
          // Another run promoted a model at least as good since the caller decided: it stays.
          if (!wasKept) await store.unmarkKeep(p.checkpoint.id);
          return current.promotion;
        }
        const promotion: Promotion = { ...p, promotedAt: new Date().toISOString() };
        try {
          await store.client.send(
            new PutObjectCommand({
              Bucket: store.bucket,
              Key: key(p.schedule),
              Body: JSON.stringify(promotion),
              ContentType: 'application/json',
              ...(current ? { IfMatch: current.etag } : { IfNoneMatch: '*' }),
            }),
          );
          return promotion;
        } catch (e: any) {
          if (e?.$metadata?.httpStatusCode !== 412 && e?.name !== 'PreconditionFailed') throw e;
          // The pointer moved since we read it: read it again and decide again.
        }
      }
      throw new Error(`promotion of ${p.checkpoint.id} for schedule ${p.schedule}: the pointer kept moving over ${MAX_TRIES} tries`);
    },
  };
}
