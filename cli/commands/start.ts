import { loadConnection, loadStack } from '../../config/connection';
import { loadGrants } from '../../util/grants';
import { presetNames, resolveConfig } from '../../config/presets';
import { stackUp } from '../../infra/stack';
import { connectClient } from '../../infra/temporal';
import { startWorkers } from '../../workers/worker';
import { connectionOptions, overridesFrom, type Command } from '../args';
import { defaultCampaignId, START_OPTIONS, startArgs, startOnce } from '../campaign-start';
import { follow, resultTable, uiUrl } from './campaign';
import { writeCampaignReport } from './report';

export const startCommands: Command[] = [
  {
    path: ['start'],
    summary: 'The main job: bring the local stack up, run a worker in this process and run a campaign (quick preset) end to end',
    usage: `start [--preset ${presetNames().join('|')}] [--seed N] [--id ID] [--priority 1-5] [--json]`,
    options: { preset: { type: 'string', default: 'quick' }, ...START_OPTIONS, json: { type: 'boolean' }, ...connectionOptions },
    async run(v) {
      const args = startArgs(v);
      const config = resolveConfig({ preset: v.preset, overrides: args.seed !== undefined ? { seed: args.seed } : undefined });
      const overrides = overridesFrom(v);
      const log = (l: string) => console.error(l);
      const st = await stackUp(loadStack(overrides), (l) => log(`[stack] ${l}`));
      log(`[stack] Temporal ${st.temporal.address} (UI ${st.temporal.uiUrl}), S3 ${st.s3.endpoint}`);
      const conn = loadConnection(overrides);
      // The in-process worker's grants come from the environment (T1_ALLOW_*), as `t1 worker`'s do.
      const workers = await startWorkers(conn, 'all', loadGrants());
      const client = await connectClient(conn.temporal);
      try {
        // Run again the same day (after Ctrl-C, say), it joins the campaign this command started rather than begin another.
        const id = args.id ?? defaultCampaignId(v.preset, config);
        const { handle, outcome, message } = await startOnce(client, { campaignId: id, config, preset: v.preset }, args.priority);
        log(`[start] ${message}`);
        log(
          `[start] campaign ${id}, preset ${v.preset}, backend ${workers.backend}: synthesize -> SFT -> ${config.rl.epochs} RL epochs -> evaluation`,
        );
        log(`[start] Temporal UI: ${uiUrl(conn, id)}`);
        if (outcome !== 'completed') await follow(handle, { quiet: v.json });
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
