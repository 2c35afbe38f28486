/**
 * The `t1` command. bin/t1.js calls `main` from the compiled CLI with the manifest made at build
 * time (each command's module loads only when it runs), or from these sources through tsx without
 * one (every command module loads first).
 */
import { dispatch } from './args';
import { lazyCommand, loadCommands, type CommandEntry } from './registry';

export { commandManifest } from './registry';

export async function main(argv: string[], manifest?: CommandEntry[]): Promise<number> {
  const commands = manifest ? manifest.map(lazyCommand) : (await loadCommands()).map((c) => c.command);
  return dispatch(commands, argv);
}
