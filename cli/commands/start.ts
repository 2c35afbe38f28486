import { loadConnection, loadStack } from '../../config/connection';
import { loadGrants } from '../../config/grants';
import { presetNames, resolveConfig } from '../../config/presets';
import { stackUp } from '../../infra/stack';
import { connectClient } from '../../infra/temporal';
import { startCampaign } from '../../client/campaigns';
import { startWorkers } from '../../workers/worker';
import { connectionOptions, overridesFrom, UsageError, type Command } from '../args';
import { follow, newCampaignId, resultTable, uiUrl } from './campaign';
import { writeCampaignReport } from './report';

export const startCommands: Command[] = [
  {
    path: ['start'],
    summary: 'The main job: bring the local stack up, run a worker in this process and run a campaign (quick preset) end to end',
    usage: `start [--preset ${presetNames().join('|')}] [--seed N] [--json]`,
    options: { preset: { type: 'string', default: 'quick' }, seed: { type: 'string' }, json: { type: 'boolean' }, ...connectionOptions },
    async run(v) {
      if (v.seed !== undefined && !/^\d+$/.test(v.seed)) throw new UsageError(`--seed: expected a non-negative integer, got "${v.seed}"`);
      const config = resolveConfig({ preset: v.preset, overrides: v.seed !== undefined ? { seed: Number(v.seed) } : undefined });
      const overrides = overridesFrom(v);
      const log = (l: string) => console.error(l);
      const st = await stackUp(loadStack(overrides), (l) => log(`[stack] ${l}`));
      log(`[stack] Temporal ${st.temporal.address} (UI ${st.temporal.uiUrl}), S3 ${st.s3.endpoint}`);
      const conn = loadConnection(overrides);
      // The in-process worker's grants come from the environment (T1_ALLOW_*), as `t1 worker`'s do.
      const workers = await startWorkers(conn, 'all', loadGrants());
      const client = await connectClient(conn.temporal);
      try {
        const id = newCampaignId();
        log(
          `[start] campaign ${id}, preset ${v.preset}, backend ${workers.backend}: synthesize -> SFT -> ${config.rl.epochs} RL epochs -> evaluation`,
        );
        log(`[start] Temporal UI: ${uiUrl(conn, id)}`);
        const handle = await startCampaign(client, { campaignId: id, config, preset: v.preset });
        await follow(handle, { quiet: v.json });
        const result = await handle.result();
        const report = await writeCampaignReport(conn, client, id);
        if (v.json) console.log(JSON.stringify({ ...result, uiUrl: uiUrl(conn, id), report, backend: workers.backend }));
        else
          console.log(
            `${resultTable(result)}\n\nfinal checkpoint ${result.checkpoints.final.id} (sha256 ${result.checkpoints.final.sha256.slice(0, 16)}…)\nreport: ${report}\nTemporal UI: ${uiUrl(conn, id)}\nThe stack keeps running; \`npx t1 stack down\` stops it.`,
          );
      } finally {
        await client.connection.close();
        await workers.shutdown();
      }
    },
  },
];
