/**
 * Every `t1` command, in help order, grouped by the modules that define it. A group's modules are
 * imported only when one of its commands runs: the compiled CLI (infra/build-cli.mjs) lists the
 * commands from a manifest made at build time, so `t1 --help` loads no command module at all and
 * `t1 campaign status` loads only the campaign commands' dependencies.
 */
import type { Command } from './args';

export const COMMAND_GROUPS: Record<string, () => Promise<Command[]>> = {
  start: async () => (await import('./commands/start')).startCommands,
  campaign: async () => (await import('./commands/campaign')).campaignCommands,
  eval: async () => [
    evalCommand((await import('./commands/eval')).evalCommands[0], (await import('./commands/external')).externalCommands),
  ],
  schedule: async () => (await import('./commands/schedule')).scheduleCommands,
  report: async () => (await import('./commands/report')).reportCommands,
  reproduce: async () => (await import('./commands/reproduce')).reproduceCommands,
  synthesize: async () => (await import('./commands/synthesize')).synthesizeCommands,
  external: async () => (await import('./commands/external')).externalCommands,
  export: async () => (await import('./commands/export')).exportCommands,
  stack: async () => (await import('./commands/stack')).stackCommands,
  checkpoints: async () => (await import('./commands/checkpoints')).checkpointCommands,
  worker: async () => (await import('./commands/worker')).workerCommands,
  'codec-server': async () => (await import('./commands/codec-server')).codecServerCommands,
  bench: async () => [benchCommand],
};

/** A command as the manifest records it: everything but `run`, plus the group that defines it. */
export type CommandEntry = Omit<Command, 'run'> & { group: string };

/** Every group loaded (the slow path, also what the build records). */
export async function loadCommands(): Promise<{ group: string; command: Command }[]> {
  const groups = await Promise.all(
    Object.entries(COMMAND_GROUPS).map(async ([group, load]) => (await load()).map((command) => ({ group, command }))),
  );
  return groups.flat();
}

export async function commandManifest(): Promise<CommandEntry[]> {
  return (await loadCommands()).map(({ group, command: { path, summary, usage, options } }) => ({ group, path, summary, usage, options }));
}

/** A manifest entry that imports its group when it runs. */
export function lazyCommand(entry: CommandEntry): Command {
  return {
    ...entry,
    async run(values, positionals) {
      const key = entry.path.join(' ');
      const cmd = (await COMMAND_GROUPS[entry.group]()).find((c) => c.path.join(' ') === key);
      if (!cmd) throw new Error(`command "${key}" is no longer in group "${entry.group}": rebuild the CLI (npm run build:cli)`);
      return cmd.run(values, positionals);
    },
  };
}

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

/**
 * `t1 eval` evaluates one of our checkpoints or a pretrained MODEL on a task; with --endpoint any
 * OpenAI-compatible endpoint, and with --benchmark a pretrained MODEL, on a JSONL benchmark.
 */
function evalCommand(checkpointEval: Command, externalCommands: Command[]): Command {
  const endpointEval = externalCommands.find((c) => c.path[0] === 'eval-endpoint')!;
  return {
    path: ['eval'],
    summary: `${checkpointEval.summary}; with --endpoint: an OpenAI-compatible endpoint on a JSONL math benchmark`,
    usage: `${checkpointEval.usage}\n   or: t1 ${endpointEval.usage.replaceAll('eval-endpoint', 'eval')}`,
    options: { ...checkpointEval.options, ...endpointEval.options },
    run: (v, pos) => (v.endpoint !== undefined || v.benchmark !== undefined ? endpointEval.run(v, pos) : checkpointEval.run(v, pos)),
  };
}
