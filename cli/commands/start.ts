import { randomBytes } from 'node:crypto';
import { loadConnection, loadStack } from '../../config/connection';
import { stackUp } from '../../infra/stack';
import { connectClient } from '../../infra/temporal';
import { startWorkers } from '../../workers/worker';
import { QUEUES } from '../../workflows/queues';
import { connectionOptions, overridesFrom, type Command } from '../args';

export const startCommands: Command[] = [
  {
    path: ['start'],
    summary: 'The main job: bring the local stack up, run a worker in this process and run the proof workflow end to end',
    usage: 'start [--json]',
    options: { json: { type: 'boolean' }, ...connectionOptions },
    async run(v) {
      const overrides = overridesFrom(v);
      const log = (l: string) => console.error(l);
      const st = await stackUp(loadStack(overrides), (l) => log(`[stack] ${l}`));
      log(`[stack] Temporal ${st.temporal.address}, S3 ${st.s3.endpoint}`);
      const conn = loadConnection(overrides);
      const workers = await startWorkers(conn, 'all');
      const client = await connectClient(conn.temporal);
      try {
        const id = `proof-${new Date().toISOString().replace(/[-:.TZ]/g, '').slice(0, 14)}-${randomBytes(2).toString('hex')}`;
        log(`[start] running ${id} (CPU activity writes a checkpoint, GPU activity verifies it)`);
        const result = await client.workflow.execute('proofWorkflow', { taskQueue: QUEUES.cpu, workflowId: id, args: [{ campaign: id, seed: 1 }] });
        const url = `${conn.temporal.uiUrl}/namespaces/${conn.temporal.namespace}/workflows/${id}`;
        if (v.json) console.log(JSON.stringify({ workflowId: id, ...result, uiUrl: url }));
        else console.log(`checkpoint ${result.ref.id} sha256 ${result.ref.sha256.slice(0, 16)}… verified on the GPU queue\nTemporal UI: ${url}`);
      } finally {
        await client.connection.close();
        await workers.shutdown();
      }
    },
  },
];
