#!/usr/bin/env node
// Compiles the t1 command to JavaScript (dist/cli), so that a call does not transpile TypeScript:
// esbuild bundles cli/main.ts with every npm package left external and each command group in its
// own chunk, then the command manifest (names, summaries, options) is recorded from the bundle.
// Runs at install (`prepare`), before `npm start/test/bench` (infra/bootstrap.mjs) when stale, and
// as `npm run build:cli`. bin/t1.js uses the build only while every input still has the size and
// mtime recorded here; otherwise it runs the sources through tsx. `--if-stale`: build only then;
// `--check`: exit 0 if fresh, 1 if not.
import { execFileSync } from 'node:child_process';
import { readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
export const DIST = join(root, 'dist', 'cli');
const require = createRequire(import.meta.url);

/** Inputs besides the bundled sources: this script (the build's format), and what the manifest reads. */
const EXTRA_INPUTS = ['infra/build-cli.mjs', 'tsconfig.json', 'presets'];

/** [mtime, size]; a file changed since `since` (while it was bundled, maybe after esbuild read it) gets mtime -1: never fresh. */
function stamp(file, since) {
  const st = statSync(join(root, file));
  return [st.mtimeMs > since ? -1 : st.mtimeMs, st.size];
}

/** The recorded build in `out` if every input is unchanged (what bin/t1.js checks on each call). */
export function freshBuild(out = DIST) {
  let build;
  try {
    build = JSON.parse(readFileSync(join(out, 'build.json'), 'utf8'));
  } catch {
    return undefined;
  }
  for (const [file, [mtimeMs, size]] of Object.entries(build.inputs)) {
    try {
      const st = statSync(join(root, file));
      if (st.mtimeMs !== mtimeMs || st.size !== size) return undefined;
    } catch {
      return undefined;
    }
  }
  return build;
}

/**
 * In the bundle `import.meta.url` would name the chunk in dist/cli, but some modules locate files
 * beside their source (child-process entry points, the workflow bundle's entry, presets): each
 * module's own URL is substituted, relative to the chunk so that a moved checkout still works.
 */
const sourceUrls = (out) => ({
  name: 'source-import-meta-url',
  setup(build) {
    build.onLoad({ filter: /\.ts$/ }, (args) => {
      const text = readFileSync(args.path, 'utf8');
      if (!text.includes('import.meta.url')) return undefined;
      const rel = relative(out, args.path).split('\\').join('/');
      return { contents: text.replaceAll('import.meta.url', `new URL(${JSON.stringify(rel)}, import.meta.url).href`), loader: 'ts' };
    });
  },
});

export async function buildCli(out = DIST) {
  // esbuild comes with tsx (a dependency), so the build needs nothing that `npm ci --omit=dev` leaves out.
  const esbuild = require(createRequire(require.resolve('tsx/package.json')).resolve('esbuild'));
  const tmp = `${out}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  const started = Date.now();
  try {
    return await buildInto(esbuild, tmp, out, started);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

async function buildInto(esbuild, tmp, out, started) {
  const result = await esbuild.build({
    absWorkingDir: root,
    entryPoints: { main: 'cli/main.ts' },
    outdir: tmp,
    outExtension: { '.js': '.mjs' },
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    packages: 'external',
    // Temporal names workflow types by function name: bundling must not rename functions.
    keepNames: true,
    sourcemap: 'linked',
    metafile: true,
    logLevel: 'warning',
    plugins: [sourceUrls(out)],
  });
  const manifest = JSON.parse(
    execFileSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `console.log(JSON.stringify(await (await import(${JSON.stringify(pathToFileURL(join(tmp, 'main.mjs')).href)})).commandManifest()))`,
      ],
      { cwd: root, encoding: 'utf8', env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '3' } },
    )
      .trim()
      .split('\n')
      .pop(),
  );
  const files = [...Object.keys(result.metafile.inputs), ...EXTRA_INPUTS];
  const inputs = Object.fromEntries(files.map((f) => [f, stamp(f, started)]));
  writeFileSync(join(tmp, 'build.json'), JSON.stringify({ builtAt: new Date().toISOString(), inputs, manifest }));
  rmSync(out, { recursive: true, force: true });
  try {
    renameSync(tmp, out);
  } catch (e) {
    // A concurrent build got there first; its output is as fresh as this one.
    if (e.code !== 'ENOTEMPTY' && e.code !== 'EEXIST') throw e;
  }
  return { ms: Date.now() - started, inputs: files.length, commands: manifest.length };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  if (process.argv.includes('--check')) process.exit(freshBuild() ? 0 : 1);
  if (process.argv.includes('--if-stale') && freshBuild()) process.exit(0);
  try {
    const r = await buildCli();
    console.error(`[build-cli] dist/cli: ${r.commands} commands from ${r.inputs} inputs in ${r.ms} ms`);
  } catch (e) {
    // Never fatal: without a build bin/t1.js runs the sources through tsx, only slower to start.
    rmSync(DIST, { recursive: true, force: true });
    console.error(`[build-cli] no compiled CLI (t1 runs from source through tsx): ${e instanceof Error ? e.message : e}`);
  }
}
