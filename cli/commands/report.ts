import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { loadConnection, type ConnectionConfig } from '../../config/connection';
import { campaignHandle } from '../../client/campaigns';
import { connectClient } from '../../infra/temporal';
import { buildReport } from '../../report/html';
import { svgToPng } from '../../report/png';
import { CheckpointStore } from '../../storage/checkpoints';
import { loggedThrough, tensorboardUrl } from '../../storage/tensorboard';
import { connectionOptions, overridesFrom, UsageError, type Command } from '../args';
import { CampaignError, uiUrl } from './campaign';

/** Writes DIR/index.html and each chart as NAME.svg and NAME.png for a completed campaign; returns the page's path. */
export async function writeCampaignReport(conn: ConnectionConfig, client: Client, id: string, outDir?: string): Promise<string> {
  const store = new CheckpointStore(conn.s3);
  try {
    const handle = campaignHandle(client, id);
    let status: string;
    try {
      status = (await handle.describe()).status.name;
    } catch (e) {
      if (e instanceof WorkflowNotFoundError) throw new CampaignError(`no campaign "${id}"`);
      throw e;
    }
    if (status !== 'COMPLETED')
      throw new CampaignError(
        `campaign ${id} is ${status}; a report needs a completed campaign (watch it with \`t1 campaign watch ${id}\`)`,
      );
    const result = await handle.result();
    const manifests = await store.list({ campaign: id });
    const report = buildReport({
      campaignId: id,
      workflowStatus: status,
      result,
      manifests,
      uiUrl: uiUrl(conn, id),
      // Campaigns trained before the logs existed have none: no pointer to an empty logdir.
      ...((await loggedThrough(store, id, 'sft')) > 0 && { tensorboard: tensorboardUrl(conn.s3.bucket, id) }),
      generatedAt: new Date().toISOString(),
    });
    const out = resolve(outDir ?? join('reports', id));
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, 'index.html'), report.html);
    for (const [name, svg] of Object.entries(report.charts)) {
      writeFileSync(join(out, name), svg);
      writeFileSync(join(out, name.replace(/\.svg$/, '.png')), svgToPng(svg));
    }
    return join(out, 'index.html');
  } finally {
    store.close();
  }
}

export const reportCommands: Command[] = [
  {
    path: ['report'],
    summary: "Write a campaign's report: a self-contained HTML page with SVG and PNG charts",
    usage: 'report CAMPAIGN_ID [--out DIR]',
    options: { out: { type: 'string' }, ...connectionOptions },
    async run(v, pos) {
      if (pos.length !== 1) throw new UsageError('expected exactly one campaign ID');
      const conn = loadConnection(overridesFrom(v));
      const client = await connectClient(conn.temporal);
      try {
        console.log(await writeCampaignReport(conn, client, pos[0], v.out));
      } finally {
        await client.connection.close();
      }
    },
  },
];
