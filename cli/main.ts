/** The `t1` command. */
import { dispatch, type Command } from './args';
import { campaignCommands } from './commands/campaign';
import { checkpointCommands } from './commands/checkpoints';
import { evalCommands } from './commands/eval';
import { exportCommands } from './commands/export';
import { externalCommands } from './commands/external';
import { reportCommands } from './commands/report';
import { reproduceCommands } from './commands/reproduce';
import { scheduleCommands } from './commands/schedule';
import { stackCommands } from './commands/stack';
import { startCommands } from './commands/start';
import { synthesizeCommands } from './commands/synthesize';
import { workerCommands } from './commands/worker';

const benchCommand: Command = {
  path: ['bench'],
  summary: 'Run benchmarks; prints one JSON object per metric (--profile: time per op kind of one SFT step and one decode step)',
  usage: 'bench [--only NAME,NAME | --profile]',
  options: { only: { type: 'string' }, profile: { type: 'boolean' } },
  async run(v) {
    const { runBenches } = await import('../bench/run');
    return runBenches([...(v.only ? ['--only', v.only] : []), ...(v.profile ? ['--profile'] : [])]);
  },
};

// `t1 eval` evaluates one of our checkpoints or a pretrained MODEL on a task; with --endpoint any OpenAI-compatible
// endpoint, and with --benchmark a pretrained MODEL, on a JSONL benchmark.
const checkpointEval = evalCommands[0];
const endpointEval = externalCommands.find((c) => c.path[0] === 'eval-endpoint')!;
const evalCommand: Command = {
  path: ['eval'],
  summary: `${checkpointEval.summary}; with --endpoint: an OpenAI-compatible endpoint on a JSONL math benchmark`,
  usage: `${checkpointEval.usage}\n   or: t1 ${endpointEval.usage.replaceAll('eval-endpoint', 'eval')}`,
  options: { ...checkpointEval.options, ...endpointEval.options },
  run: (v, pos) => (v.endpoint !== undefined || v.benchmark !== undefined ? endpointEval.run(v, pos) : checkpointEval.run(v, pos)),
};

const commands: Command[] = [
  ...startCommands,
  ...campaignCommands,
  evalCommand,
  ...scheduleCommands,
  ...reportCommands,
  ...reproduceCommands,
  ...synthesizeCommands,
  ...externalCommands,
  ...exportCommands,
  ...stackCommands,
  ...checkpointCommands,
  ...workerCommands,
  benchCommand,
];

process.exitCode = await dispatch(commands, process.argv.slice(2));
