/**
 * Custom search attributes of a campaign, so the Temporal UI lists campaigns like a training log.
 * `t1 stack up` registers them on the dev server; workflows upsert them.
 */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const SA = {
  campaignId: defineSearchAttributeKey('T1CampaignId', SearchAttributeType.KEYWORD),
  stage: defineSearchAttributeKey('T1Stage', SearchAttributeType.KEYWORD),
  epoch: defineSearchAttributeKey('T1Epoch', SearchAttributeType.INT),
  bestAccuracy: defineSearchAttributeKey('T1BestAccuracy', SearchAttributeType.DOUBLE),
  preset: defineSearchAttributeKey('T1Preset', SearchAttributeType.KEYWORD),
} as const;

/** `temporal server start-dev --search-attribute` spelling of each attribute. */
export const SEARCH_ATTRIBUTE_FLAGS = ['T1CampaignId=Keyword', 'T1Stage=Keyword', 'T1Epoch=Int', 'T1BestAccuracy=Double', 'T1Preset=Keyword'];
