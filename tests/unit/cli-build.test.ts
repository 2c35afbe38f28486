/**
 * The compiled CLI (infra/build-cli.mjs), built into a temporary folder: the same commands as the
 * sources; `--help` loads no npm package and `campaign status` no heavy one; modules that find
 * files beside their source still find them; a build whose inputs changed is not used.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '../..');
const BUILD = pathToFileURL(join(ROOT, 'infra/build-cli.mjs')).href;
const node = (script: string, env: NodeJS.ProcessEnv = {}) =>
  execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, ...env } });

let out: string;
beforeAll(() => {
  mkdirSync(join(ROOT, 'dist'), { recursive: true });
  // Inside the checkout (dist/ is ignored by git): the chunks find npm packages in node_modules above them.
  out = join(mkdtempSync(join(ROOT, 'dist', 'test-')), 'cli');
  node(`await (await import(${JSON.stringify(BUILD)})).buildCli(process.env.OUT)`, { OUT: out });
}, 120_000);
afterAll(() => rmSync(join(out, '..'), { recursive: true, force: true }));

const fresh = () => node(`console.log(!!(await import(${JSON.stringify(BUILD)})).freshBuild(process.env.OUT))`, { OUT: out }).trim();

/** npm packages a chunk loads before it runs, through its static imports (dynamic ones load later, if ever). */
function staticPackages(chunk: string, seen = new Set<string>()): Set<string> {
  const packages = new Set<string>();
  if (seen.has(chunk)) return packages;
  seen.add(chunk);
  const text = readFileSync(join(out, chunk), 'utf8');
  for (const m of text.matchAll(/^import\s(?:[^;]*?\sfrom\s*)?"([^"]+)";/gms)) {
    if (m[1].startsWith('./')) for (const p of staticPackages(m[1].slice(2), seen)) packages.add(p);
    else if (!m[1].startsWith('node:')) packages.add(m[1]);
  }
  return packages;
}

describe('the compiled CLI', () => {
  it('lists the same commands as the sources', () => {
    const compiled = node(
      `const b = JSON.parse((await import('node:fs')).readFileSync(process.env.OUT + '/build.json', 'utf8'));
      process.exitCode = await (await import(process.env.OUT + '/main.mjs')).main(['--help'], b.manifest);`,
      { OUT: out },
    );
    const source = execFileSync(process.execPath, ['bin/t1.js', '--help'], {
      cwd: ROOT,
      encoding: 'utf8',
      env: { ...process.env, T1_CLI: 'source' },
    });
    expect(compiled).toBe(source);
    expect(compiled).toMatch(/^ {2}campaign start /m);
  }, 60_000);

  it('answers --help without loading any npm package; campaign commands without TensorFlow, the worker SDK or S3', () => {
    expect([...staticPackages('main.mjs')]).toEqual([]);
    const main = readFileSync(join(out, 'main.mjs'), 'utf8');
    const campaign = main.match(/"\.\/(campaign-[A-Z0-9]+\.mjs)"/)![1];
    const loaded = [...staticPackages(campaign)];
    expect(loaded).toContain('@temporalio/client');
    const heavy = loaded.filter((p) => /^@tensorflow\/|^@temporalio\/worker$|^@aws-sdk\//.test(p));
    expect(heavy, 'a module that cli/commands/campaign.ts imports statically imports these: import them where they are used').toEqual([]);
  });

  it('gives every module its own source URL, so files located beside the source are found', () => {
    const located: string[] = [];
    for (const chunk of readdirSync(out).filter((f) => f.endsWith('.mjs'))) {
      const text = readFileSync(join(out, chunk), 'utf8');
      const uses = text.split('import.meta.url').length - 1;
      const rewritten = [...text.matchAll(/new URL\("([^"]+)", import\.meta\.url\)/g)].map((m) => m[1]);
      expect(rewritten.length, chunk).toBe(uses);
      for (const rel of rewritten) located.push(fileURLToPath(new URL(rel, pathToFileURL(join(out, chunk)))));
    }
    for (const file of located) expect(existsSync(file), file).toBe(true);
    expect(located.map((f) => f.slice(ROOT.length + 1))).toEqual(expect.arrayContaining(['workers/compute.ts', 'config/presets.ts']));
  });

  it('is used only while every input keeps the size and mtime it was built from', () => {
    expect(fresh()).toBe('true');
    const path = join(out, 'build.json');
    const build = JSON.parse(readFileSync(path, 'utf8'));
    build.inputs['cli/main.ts'][0] -= 1000;
    writeFileSync(path, JSON.stringify(build));
    expect(fresh()).toBe('false');
  });
});
