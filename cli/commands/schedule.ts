import { ScheduleNotFoundError, ScheduleOverlapPolicy, type Client } from '@temporalio/client';
import type { ConnectionConfig } from '../../config/connection';
import { resolveConfig } from '../../config/presets';
import { scheduledCampaignAction } from '../../client/campaigns';
import { connectionOptions, UsageError, type Command } from '../args';
import { CampaignError, withClient, withTaskFile } from './campaign';

/** A client for schedule commands: a missing schedule is the user's mistake, named plainly. */
async function withScheduleClient<T>(v: Record<string, any>, fn: (c: Client, conn: ConnectionConfig) => Promise<T>): Promise<T> {
  try {
    return await withClient(v, fn);
  } catch (e) {
    if (e instanceof ScheduleNotFoundError) throw new CampaignError(`no schedule "${e.scheduleId}"`);
    throw e;
  }
}

function oneName(pos: string[]): string {
  if (pos.length !== 1) throw new UsageError('expected exactly one schedule NAME');
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,40}$/.test(pos[0]))
    throw new UsageError(`schedule NAME: expected letters, digits, ".", "_", "-" (at most 41), got "${pos[0]}"`);
  return pos[0];
}

export const scheduleCommands: Command[] = [
  {
    path: ['schedule', 'create'],
    summary: 'Create a retraining schedule (warm-starts from the promoted checkpoint; overlapping runs are skipped)',
    usage: 'schedule create NAME --cron EXPR [--preset P | --config FILE] [--allow-overlap]',
    options: {
      cron: { type: 'string' },
      preset: { type: 'string' },
      config: { type: 'string' },
      'allow-overlap': { type: 'boolean' },
      ...connectionOptions,
    },
    run: (v, pos) =>
      withScheduleClient(v, async (client, conn) => {
        const name = oneName(pos);
        if (!v.cron) throw new UsageError('--cron is required, e.g. --cron "0 3 * * *"');
        const preset = v.preset ?? (v.config ? undefined : 'quick');
        // A jsonl file is checked now and pinned by each run, so nightly runs train on the file as it is that night.
        const checked = await withTaskFile(resolveConfig({ preset, file: v.config }), conn);
        const config = { ...checked, task: { ...checked.task, sha256: undefined } };
        await client.schedule.create({
          scheduleId: name,
          spec: { cronExpressions: [v.cron] },
          action: scheduledCampaignAction({ schedule: name, config, preset }),
          policies: { overlap: v['allow-overlap'] ? ScheduleOverlapPolicy.ALLOW_ALL : ScheduleOverlapPolicy.SKIP },
        });
        console.log(`schedule ${name} created (${v.cron})`);
      }),
  },
  {
    path: ['schedule', 'ls'],
    summary: 'List schedules',
    usage: 'schedule ls [--json]',
    options: { json: { type: 'boolean' }, ...connectionOptions },
    run: (v) =>
      withScheduleClient(v, async (client) => {
        const rows = [];
        for await (const s of client.schedule.list()) {
          const d = await client.schedule.getHandle(s.scheduleId).describe();
          rows.push({
            name: s.scheduleId,
            paused: d.state.paused,
            next: d.info.nextActionTimes[0]?.toISOString(),
            recent: d.info.recentActions.length,
          });
        }
        if (v.json) return void console.log(JSON.stringify(rows));
        for (const r of rows)
          console.log(`${r.name.padEnd(24)} ${r.paused ? 'paused ' : 'active '} next ${r.next ?? '-'}  runs ${r.recent}`);
      }),
  },
  ...(['pause', 'unpause', 'delete', 'trigger'] as const).map((verb): Command => ({
    path: ['schedule', verb],
    summary: {
      pause: 'Pause a schedule',
      unpause: 'Unpause a schedule',
      delete: 'Delete a schedule',
      trigger: 'Start a scheduled run now',
    }[verb],
    usage: `schedule ${verb} NAME`,
    options: connectionOptions,
    run: (v, pos) =>
      withScheduleClient(v, async (client) => {
        const h = client.schedule.getHandle(oneName(pos));
        await h[verb]();
        console.log(`${verb}: ${pos[0]}`);
      }),
  })),
];
