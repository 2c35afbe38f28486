/** A small subcommand framework over node:util parseArgs: every command gets --help and typed flags. */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { Overrides } from '../config/connection';
import { UserError } from '../util/errors';

type Options = NonNullable<ParseArgsConfig['options']>;

export interface Command {
  /** Words that select it, e.g. ['stack', 'up']. */
  path: string[];
  summary: string;
  usage: string;
  options?: Options;
  run(values: Record<string, any>, positionals: string[]): Promise<number | void>;
}

/** Flags shared by commands that talk to Temporal or S3; each maps to a config field. */
export const CONNECTION_FLAGS: Record<string, keyof Overrides> = {
  'state-dir': 'stack.stateDir',
  'temporal-address': 'temporal.address',
  namespace: 'temporal.namespace',
  's3-endpoint': 's3.endpoint',
  's3-bucket': 's3.bucket',
};
export const connectionOptions: Options = Object.fromEntries(Object.keys(CONNECTION_FLAGS).map((k) => [k, { type: 'string' }]));

export function overridesFrom(values: Record<string, any>): Overrides {
  const o: Overrides = {};
  for (const [flag, field] of Object.entries(CONNECTION_FLAGS)) if (values[flag] !== undefined) o[field] = values[flag];
  return o;
}

export class UsageError extends UserError {
  override name = 'UsageError';
}

export async function dispatch(commands: Command[], argv: string[]): Promise<number> {
  const words = argv.filter((a) => !a.startsWith('-'));
  const cmd = commands.filter((c) => c.path.every((p, i) => words[i] === p)).sort((a, b) => b.path.length - a.path.length)[0];
  if (!cmd) {
    const wantsHelp = argv.length === 0 || argv.includes('--help') || argv.includes('-h') || argv[0] === 'help';
    const prefix = words.length ? commands.filter((c) => c.path[0] === words[0]) : [];
    const shown = prefix.length ? prefix : commands;
    const text = `usage: t1 <command> [options]\n\ncommands:\n${shown.map((c) => `  ${c.path.join(' ').padEnd(22)} ${c.summary}`).join('\n')}\n\nRun \`t1 <command> --help\` for a command's options.`;
    if (wantsHelp || (prefix.length && words.length === 1)) {
      console.log(text);
      return wantsHelp ? 0 : 2;
    }
    console.error(`t1: unknown command "${words.join(' ')}"\n\n${text}`);
    return 2;
  }
  const rest = removeWords(argv, cmd.path);
  const options: Options = { help: { type: 'boolean', short: 'h' }, ...(cmd.options ?? {}) };
  let parsed;
  try {
    parsed = parseArgs({ args: rest, options, allowPositionals: true, strict: true });
  } catch (e: any) {
    console.error(`t1 ${cmd.path.join(' ')}: ${e.message}\n\n${helpText(cmd, options)}`);
    return 2;
  }
  if (parsed.values.help) {
    console.log(helpText(cmd, options));
    return 0;
  }
  try {
    return (await cmd.run(parsed.values, parsed.positionals)) ?? 0;
  } catch (e) {
    // Loaded on failure only: it needs the Temporal SDK and zod, which `t1 --help` should not load.
    const { formatError } = await import('./format-error');
    console.error(`t1 ${cmd.path.join(' ')}: ${formatError(e)}`);
    return 1;
  }
}

function removeWords(argv: string[], path: string[]): string[] {
  const out = [...argv];
  for (const p of path) out.splice(out.indexOf(p), 1);
  return out;
}

function helpText(cmd: Command, options: Options): string {
  const opts = Object.entries(options)
    .map(([k, o]) => `  --${k}${o.type === 'string' ? ' VALUE' : ''}${o.short ? `, -${o.short}` : ''}`)
    .join('\n');
  return `usage: t1 ${cmd.usage}\n\n${cmd.summary}\n\noptions:\n${opts}`;
}
