/**
 * What `t1 campaign start` and `t1 start` share: the readable default id, `--priority`, and the
 * idempotent start, with one clear line for each outcome (started, joined, already done, refused).
 */
import { basename, extname } from 'node:path';
import type { Client } from '@temporalio/client';
import { ensureCampaign, PRIORITY_RANGE, type CampaignHandle } from '../client/campaigns';
import type { CampaignConfig } from '../config/campaign';
import { CAMPAIGN_RE } from '../storage/manifest';
import { hashOf } from '../util/hash';
import { UserError } from '../util/errors';
import type { CampaignInput } from '../workflows/campaign';
import { UsageError } from './args';

export class CampaignExistsError extends UserError {
  override name = 'CampaignExistsError';
}

export const START_OPTIONS = {
  id: { type: 'string' },
  seed: { type: 'string' },
  priority: { type: 'string' },
} as const;

/** --id, --seed and --priority, checked before anything is contacted or started (the id names every checkpoint). */
export function startArgs(v: Record<string, any>): { id?: string; seed?: number; priority?: number } {
  if (v.seed !== undefined && !/^\d+$/.test(v.seed)) throw new UsageError(`--seed: expected a non-negative integer, got "${v.seed}"`);
  if (v.id !== undefined && !CAMPAIGN_RE.test(v.id))
    throw new UsageError(
      `--id: expected 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit, got ${JSON.stringify(v.id)}`,
    );
  const { min, max } = PRIORITY_RANGE;
  if (v.priority !== undefined && !(/^\d+$/.test(v.priority) && Number(v.priority) >= min && Number(v.priority) <= max))
    throw new UsageError(`--priority: expected an integer from ${min} (runs first) to ${max} (runs last), got "${v.priority}"`);
  return {
    id: v.id,
    seed: v.seed === undefined ? undefined : Number(v.seed),
    priority: v.priority === undefined ? undefined : Number(v.priority),
  };
}

/**
 * `<label>-<UTC date>-<6 hex of the config's hash>`, e.g. `quick-20261207-1a2b3c`: the same command
 * (same preset or file, same resolved config) on the same UTC day names the same campaign, so a
 * retry joins it instead of starting a second; a changed setting, or the next day, names a new one.
 */
export function defaultCampaignId(label: string, config: CampaignConfig, now = new Date()): string {
  const name =
    label
      .replace(/[^A-Za-z0-9._-]+/g, '-')
      .slice(0, 40)
      .replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, '') || 'campaign';
  return `${name}-${now.toISOString().slice(0, 10).replaceAll('-', '')}-${hashOf(config).slice(0, 6)}`;
}

/** The id's label: the preset, else the config file's name without its extension. */
export function campaignLabel(preset: string | undefined, file: string | undefined): string {
  return preset ?? (file ? basename(file, extname(file)) : 'campaign');
}

export interface Started {
  handle: CampaignHandle;
  runId: string;
  /** 'started': by this call; 'running': it already was; 'completed': it already ran to the end (nothing started). */
  outcome: 'started' | 'running' | 'completed';
  /** One line for the user. */
  message: string;
}

/**
 * Starts the campaign `input` names, or finds it: a running one is joined, a completed one is
 * reported (not run again); one that ended otherwise, or that holds the id with another config, is
 * refused with what to do.
 */
export async function startOnce(client: Client, input: CampaignInput, priority?: number): Promise<Started> {
  const id = input.campaignId;
  const r = await ensureCampaign(client, input, { priority });
  const at = (d: Date | undefined) => (d ? d.toISOString().replace(/\.\d+Z$/, 'Z') : 'unknown time');
  switch (r.outcome) {
    case 'started':
      return { ...r, outcome: 'started', message: `started ${id}` };
    case 'running':
      return { ...r, outcome: 'running', message: `${id} is already running (started ${at(r.startTime)}): not started again` };
    case 'closed':
      if (r.status === 'COMPLETED')
        return {
          ...r,
          outcome: 'completed',
          message: `${id} already completed (${at(r.closeTime)}): not started again; to run this config again, pass another --id`,
        };
      throw new CampaignExistsError(
        `${id} already ran and ended ${r.status} (${at(r.closeTime)}); an id is never reused: pass another --id to run it again`,
      );
    case 'conflict':
      throw new CampaignExistsError(
        `${id} belongs to a campaign with a different config (${r.status}, started ${at(r.startTime)}): pass another --id`,
      );
  }
}
