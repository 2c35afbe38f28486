import { loadStack } from '../../config/connection';
import { stackDown, stackStatus, stackUp } from '../../infra/stack';
import type { Command } from '../args';

const opts = {
  json: { type: 'boolean' },
  'state-dir': { type: 'string' },
  'temporal-port': { type: 'string' },
  'temporal-ui-port': { type: 'string' },
  's3-port': { type: 'string' },
} as const;

function stackConfig(v: Record<string, any>) {
  return loadStack({
    'stack.stateDir': v['state-dir'],
    'stack.temporalPort': v['temporal-port'],
    'stack.temporalUiPort': v['temporal-ui-port'],
    'stack.s3Port': v['s3-port'],
  });
}

export const stackCommands: Command[] = [
  {
    path: ['stack', 'up'],
    summary: 'Provision (first time) and start the local Temporal dev server and S3 server; a no-op if they run',
    usage: 'stack up [--json] [--state-dir DIR] [--temporal-port N] [--temporal-ui-port N] [--s3-port N]',
    options: opts,
    async run(v) {
      const st = await stackUp(stackConfig(v), (l) => console.error(`[stack] ${l}`));
      if (v.json) console.log(JSON.stringify(st));
      else
        console.log(
          `Temporal ${st.temporal.address} (UI ${st.temporal.uiUrl})\nS3       ${st.s3.endpoint} bucket ${st.s3.bucket}\nstate    ${st.stateDir}`,
        );
    },
  },
  {
    path: ['stack', 'down'],
    summary: 'Stop the servers that `stack up` started (data is kept)',
    usage: 'stack down [--json] [--state-dir DIR]',
    options: opts,
    async run(v) {
      const r = await stackDown(stackConfig(v));
      console.log(v.json ? JSON.stringify(r) : r.stopped.length ? `stopped: ${r.stopped.join(', ')}` : 'nothing was running');
    },
  },
  {
    path: ['stack', 'status'],
    summary: 'Health of the local stack',
    usage: 'stack status [--json] [--state-dir DIR]',
    options: opts,
    async run(v) {
      const st = await stackStatus(stackConfig(v));
      if (v.json) console.log(JSON.stringify(st));
      else {
        const mark = (h: boolean) => (h ? 'healthy' : 'DOWN');
        console.log(
          `temporal ${mark(st.temporal.healthy)}  ${st.temporal.address}  UI ${st.temporal.uiUrl}${st.temporal.pid ? `  pid ${st.temporal.pid}` : ''}`,
        );
        console.log(`s3       ${mark(st.s3.healthy)}  ${st.s3.endpoint}  bucket ${st.s3.bucket}${st.s3.pid ? `  pid ${st.s3.pid}` : ''}`);
      }
      return st.temporal.healthy && st.s3.healthy ? 0 : 1;
    },
  },
];
