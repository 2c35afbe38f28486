/** Progress lines for `campaign watch` / `status`: workflow state plus the activity's last heartbeat. */
import { type temporal } from '@temporalio/proto';
import { defaultPayloadConverter } from '@temporalio/common';
import type { CampaignStatus } from '../workflows/campaign';

export interface Heartbeat {
  activity: string;
  step: number;
  total: number;
  [metric: string]: number | string;
}

type PendingActivity = temporal.api.workflow.v1.IPendingActivityInfo;

export function progressOf(pending: PendingActivity[]): Heartbeat | undefined {
  for (const p of pending) {
    const payload = p.heartbeatDetails?.payloads?.[0];
    if (!payload) continue;
    const d = defaultPayloadConverter.fromPayload<Record<string, unknown>>(payload);
    if (d && typeof d.step === 'number')
      return { activity: p.activityType?.name ?? '?', ...(d.progress as object), step: d.step, total: Number(d.total ?? 0) } as Heartbeat;
  }
  return undefined;
}

function bar(done: number, total: number, width = 24): string {
  const f = total > 0 ? Math.min(1, done / total) : 0;
  const n = Math.round(f * width);
  return `[${'#'.repeat(n)}${'.'.repeat(width - n)}] ${String(done).padStart(String(total).length)}/${total}`;
}

/** What `campaign status` shows: the workflow's answer, or the search attributes when it gave none in time. */
export interface StatusView {
  campaignId: string;
  workflow: string;
  progress?: Heartbeat;
  status?: CampaignStatus;
  fallback?: { stage?: string; epoch?: number; bestAccuracy?: number; reason: string };
}

export function renderStatus({ campaignId, status: s, progress: hb, fallback }: StatusView): string {
  const parts = s ? [`${campaignId}  ${s.stage}${s.paused ? ' (PAUSED)' : ''}`] : [`${campaignId}  ${fallback?.stage ?? '?'}`];
  const epoch = s ? s.epoch : (fallback?.epoch ?? 0);
  if (s && (s.stage === 'rl' || s.epoch > 0)) parts.push(`epoch ${s.epoch}/${s.config.rl.epochs}`);
  else if (!s && epoch > 0) parts.push(`epoch ${epoch}`);
  if (hb) {
    const metrics = Object.entries(hb)
      .filter(([k, v]) => !['activity', 'step', 'total'].includes(k) && typeof v === 'number')
      .map(([k, v]) => `${k} ${Number(v).toPrecision(3)}`)
      .join('  ');
    parts.push(`${hb.activity} ${bar(hb.step, hb.total)}  ${metrics}`);
  }
  const last = s?.epochs[s.epochs.length - 1];
  if (last && !hb) parts.push(`reward ${last.reward.toFixed(3)} acc ${(100 * last.accuracy).toFixed(1)}%`);
  if (fallback) parts.push(`from search attributes: ${fallback.reason}`);
  return parts.join('  |  ');
}
