/**
 * How fast the `t1` command answers, end to end as a user runs it (a new Node process per call),
 * while a campaign trains SFT on a worker of this machine (T1_BENCH_PRESET, default quick):
 * - cli_help_seconds: `t1 --help`; cli_status_seconds: `t1 campaign status ID`; value = p95 of
 *   10 calls (p50 beside it), from the compiled CLI (dist/cli, built first if stale);
 * - cli_help_seconds_source / cli_status_seconds_source: the same calls from the TypeScript
 *   sources through tsx (T1_CLI=source), which is how every call ran before the build.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { campaignHandle, startCampaign } from '../client/campaigns';
import { loadConnection, loadStack } from '../config/connection';
import { resolveConfig } from '../config/presets';
import { stackUp } from '../infra/stack';
import { connectClient } from '../infra/temporal';
import type { Bench, Metric } from './metric';
import { spawnWorker } from './worker';

const run = promisify(execFile);
const RUNS = 10;
const TARGETS = { help: 0.5, status: 1 };

/** Nearest-rank percentile. */
const percentile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.ceil(q * xs.length) - 1];

/** Whether dist/cli is fresh (infra/build-cli.mjs --check). */
const compiledFresh = () =>
  run(process.execPath, ['infra/build-cli.mjs', '--check']).then(
    () => true,
    () => false,
  );

async function timeCalls(args: string[], env: NodeJS.ProcessEnv): Promise<number[]> {
  const seconds: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    await run(process.execPath, ['bin/t1.js', ...args], { env });
    seconds.push((performance.now() - t0) / 1000);
  }
  return seconds;
}

export const cliBench: Bench = {
  metrics: ['cli_help_seconds', 'cli_status_seconds'],
  async run(emit) {
    await run(process.execPath, ['infra/build-cli.mjs', '--if-stale']);
    await stackUp(loadStack(), (l) => console.error(`[stack] ${l}`));
    const conn = loadConnection();
    const client = await connectClient(conn.temporal);
    const worker = await spawnWorker();
    const preset = process.env.T1_BENCH_PRESET ?? 'quick';
    const id = `bench-cli-${Date.now().toString(36)}`;
    const h = campaignHandle(client, id);
    try {
      await startCampaign(client, { campaignId: id, config: resolveConfig({ preset }), preset });
      const inSft = async () =>
        (await h.describe()).raw.pendingActivities?.some((a) => a.activityType?.name === 'sftTrain' && a.lastStartedTime);
      console.error(`[bench] ${preset} campaign ${id}: waiting for SFT …`);
      while (!(await inSft())) await new Promise((r) => setTimeout(r, 1000));
      for (const [mode, suffix, env] of [
        ['compiled', '', process.env],
        ['source', '_source', { ...process.env, T1_CLI: 'source' }],
      ] as const) {
        for (const [what, args] of [
          ['help', ['--help']],
          ['status', ['campaign', 'status', id]],
        ] as const) {
          const seconds = await timeCalls([...args], env);
          const m: Metric = {
            metric: `cli_${what}_seconds${suffix}`,
            value: Math.round(percentile(seconds, 0.95) * 1000) / 1000,
            unit: 's (p95)',
            p50: Math.round(percentile(seconds, 0.5) * 1000) / 1000,
            runs: RUNS,
            mode,
            during: 'sft',
            sft_throughout: await inSft(),
            preset,
          };
          // A source file edited meanwhile makes bin/t1.js fall back to the sources: those numbers are not the build's.
          if (mode === 'compiled') Object.assign(m, { target: TARGETS[what], compiled: await compiledFresh() });
          emit(m);
        }
      }
    } finally {
      await h.terminate('CLI benchmark done').catch(() => undefined);
      worker.kill('SIGTERM');
      await client.connection.close();
    }
  },
};
