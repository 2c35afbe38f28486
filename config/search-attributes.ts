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

const DEV_SERVER_TYPE: Record<string, string> = { KEYWORD: 'Keyword', INT: 'Int', DOUBLE: 'Double' };

/** `temporal server start-dev --search-attribute` spelling of each attribute, derived from SA. */
export const SEARCH_ATTRIBUTE_FLAGS = Object.values(SA).map((k) => `${k.name}=${DEV_SERVER_TYPE[k.type]}`);
