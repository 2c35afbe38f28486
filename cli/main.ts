/** The `t1` command. */
import { dispatch, type Command } from './args';
import { checkpointCommands } from './commands/checkpoints';
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

const commands: Command[] = [...startCommands, ...stackCommands, ...checkpointCommands, ...workerCommands, benchCommand];

process.exitCode = await dispatch(commands, process.argv.slice(2));
