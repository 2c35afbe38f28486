/**
 * The promoted checkpoint of a schedule: a small pointer object (not a checkpoint, so replacing it
 * is allowed). The checkpoint it names is marked keep, so retention never removes it.
 */
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import type { CheckpointStore } from '../storage/checkpoints';
import type { CheckpointRef } from '../storage/manifest';

export interface Promotion {
  schedule: string;
  checkpoint: CheckpointRef;
  accuracy: number;
  campaignId: string;
  promotedAt: string;
}

const key = (schedule: string) => `promoted/${schedule}.json`;

export function promotionActivities(store: CheckpointStore) {
  return {
    async getPromoted(input: { schedule: string }): Promise<Promotion | null> {
      try {
        const r = await store.client.send(new GetObjectCommand({ Bucket: store.bucket, Key: key(input.schedule) }));
        return JSON.parse(await r.Body!.transformToString()) as Promotion;
      } catch (e: any) {
        if (e?.name === 'NoSuchKey' || e?.$metadata?.httpStatusCode === 404) return null;
        throw e;
      }
    },

    async promote(p: Omit<Promotion, 'promotedAt'>): Promise<Promotion> {
      await store.markKeep(p.checkpoint.id);
      const promotion: Promotion = { ...p, promotedAt: new Date().toISOString() };
      await store.client.send(
        new PutObjectCommand({
          Bucket: store.bucket,
          Key: key(p.schedule),
          Body: JSON.stringify(promotion),
          ContentType: 'application/json',
        }),
      );
      return promotion;
    },
  };
}
export type PromotionActivities = ReturnType<typeof promotionActivities>;
