/** The `t1` command. */
import { dispatch, type Command } from './args';
import { campaignCommands } from './commands/campaign';
import { checkpointCommands } from './commands/checkpoints';
import { externalCommands } from './commands/external';
import { reportCommands } from './commands/report';
import { scheduleCommands } from './commands/schedule';
import { stackCommands } from './commands/stack';
import { startCommands } from './commands/start';
import { workerCommands } from './commands/worker';

const benchCommand: Command = {
  path: ['bench'],
  summary: 'Run benchmarks; prints one JSON object per metric',
  usage: 'bench [--only NAME,NAME]',
  options: { only: { type: 'string' } },
  async run(v) {
    const { runBenches } = await import('../bench/run');
    return runBenches(v.only ? ['--only', v.only] : []);
  },
};

const commands: Command[] = [...startCommands, ...campaignCommands, ...scheduleCommands, ...reportCommands, ...externalCommands, ...stackCommands, ...checkpointCommands, ...workerCommands, benchCommand];

process.exitCode = await dispatch(commands, process.argv.slice(2));
