/**
 * The layering, read from the imports themselves: no import cycle between files, every import
 * within the directions README.md's Layout table allows (the test reads that table, so the README
 * and the code cannot drift), and the workflow bundle free of tfjs and Node builtins.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';
import { cycles, folderOf, importsOf, isBuiltin, layoutTable, ROOT, sourceFiles, type Import } from './graph';

const files = sourceFiles();
const imports: Import[] = files.flatMap(importsOf);
const layers = layoutTable(readFileSync(join(ROOT, 'README.md'), 'utf8'));
const where = (i: Import) => `${i.from}:${i.line} imports ${i.specifier}`;

describe('imports', () => {
  it('reads the whole tree', () => {
    expect(files.length).toBeGreaterThan(300);
    expect(files).toContain('workflows/campaign.ts');
    expect(imports.some((i) => i.from === 'activities/rollout.ts' && i.to === 'client/rollouts.ts')).toBe(true);
  });

  it('has no import cycle between files (type-only imports included)', () => {
    const edges = new Map<string, Set<string>>(files.map((f) => [f, new Set<string>()]));
    for (const i of imports) if (i.to) edges.get(i.from)!.add(i.to);
    expect(cycles(edges).map((c) => c.join(' -> '))).toEqual([]);
  });

  it("keeps README.md's Layout table: every folder listed once, every import in an allowed direction", () => {
    const byFolder = new Map<string, (typeof layers)[number]>();
    for (const layer of layers)
      for (const folder of layer.folders) {
        expect(byFolder.has(folder), `${folder} is listed twice in README.md's Layout table`).toBe(false);
        byFolder.set(folder, layer);
      }
    const folders = new Set(files.filter((f) => f.includes('/')).map(folderOf));
    expect(
      [...folders].filter((f) => !byFolder.has(f)),
      'folders missing from the Layout table',
    ).toEqual([]);
    for (const layer of layers)
      for (const target of [...layer.mayImport, ...layer.typesFrom])
        expect(target === '*' || byFolder.has(target), `the Layout table names ${target}, which it does not list`).toBe(true);

    const violations = imports
      .filter((i) => i.to && i.from.includes('/'))
      .filter((i) => {
        const from = folderOf(i.from);
        const to = folderOf(i.to!);
        const layer = byFolder.get(from)!;
        if (from === to || layer.mayImport.includes('*') || layer.mayImport.includes(to)) return false;
        return !(i.typeOnly && layer.typesFrom.includes(to));
      })
      .map(where);
    expect(violations).toEqual([]);
  });

  it('allows no folder loop in the Layout table (its type-only exceptions aside)', () => {
    const edges = new Map<string, Set<string>>();
    for (const layer of layers)
      for (const folder of layer.folders)
        edges.set(folder, new Set(layer.mayImport.filter((t) => t !== '*' && !layer.folders.includes(t))));
    expect(cycles(edges).map((c) => c.join(' -> '))).toEqual([]);
  });

  it('keeps the workflow bundle free of tfjs and Node builtins', () => {
    // What workers bundle (workflows/index.ts) and everything its runtime imports reach.
    const reached = new Set<string>();
    const forbidden: string[] = [];
    const visit = (file: string, via: string[]) => {
      if (reached.has(file)) return;
      reached.add(file);
      for (const i of imports.filter((x) => x.from === file && !x.typeOnly)) {
        if (i.to) visit(i.to, [...via, file]);
        else if (isBuiltin(i.specifier) || i.specifier.startsWith('@tensorflow/'))
          forbidden.push(`${[...via, file].join(' -> ')}: ${i.specifier}`);
      }
    };
    visit('workflows/index.ts', []);
    expect(forbidden).toEqual([]);
    expect(reached.size).toBeGreaterThan(5);
  });

  it("holds eslint.config.js's sandbox boundary on every file the workflow bundle reaches", async () => {
    const reached = new Set<string>();
    const visit = (file: string) => {
      if (reached.has(file)) return;
      reached.add(file);
      for (const i of imports) if (i.from === file && !i.typeOnly && i.to) visit(i.to);
    };
    visit('workflows/index.ts');
    const eslint = new ESLint({ cwd: ROOT });
    const unguarded: string[] = [];
    for (const file of [...reached].sort()) {
      const config = (await eslint.calculateConfigForFile(join(ROOT, file))) as { rules?: Record<string, unknown> };
      const rule = config.rules?.['@typescript-eslint/no-restricted-imports'];
      if (!Array.isArray(rule) || rule[0] === 0 || rule[0] === 'off') unguarded.push(file);
    }
    expect(unguarded, 'add these files to SANDBOX_FILES in eslint.config.js (or stop the bundle reaching them)').toEqual([]);
  });

  it('keeps storage free of tfjs', () => {
    const reached = new Set<string>();
    const tfjs: string[] = [];
    const visit = (file: string) => {
      if (reached.has(file)) return;
      reached.add(file);
      for (const i of imports.filter((x) => x.from === file && !x.typeOnly)) {
        if (i.to) visit(i.to);
        else if (i.specifier.startsWith('@tensorflow/')) tfjs.push(`${file}: ${i.specifier}`);
      }
    };
    for (const f of files.filter((f) => folderOf(f) === 'storage')) visit(f);
    expect(tfjs).toEqual([]);
  });
});
