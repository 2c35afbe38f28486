#!/usr/bin/env node
// The t1 command: the compiled CLI (dist/cli, infra/build-cli.mjs) while it is fresh, else the
// TypeScript sources through tsx. Fresh = every input file still has the size and mtime recorded
// at build time (about 150 stat calls, ~1 ms). T1_CLI=source forces the sources.
import module from 'node:module';
import { freshBuild } from '../infra/build-cli.mjs';

// Node 22.1+ keeps compiled code of every module (ours and node_modules') in a cache: faster starts.
module.enableCompileCache?.();

const build = process.env.T1_CLI === 'source' ? undefined : freshBuild();
let entry;
if (build) {
  if (process.env.T1_DEBUG) process.setSourceMapsEnabled(true);
  // Missing only while a build swaps the folder: then the sources.
  entry = await import('../dist/cli/main.mjs').catch(() => undefined);
}
if (!entry) {
  const { register } = await import('tsx/esm/api');
  register();
  entry = await import('../cli/main.ts');
}
process.exitCode = await entry.main(process.argv.slice(2), build?.manifest);
