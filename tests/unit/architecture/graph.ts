/**
 * The repository's import graph, read with the TypeScript parser: every static import and export
 * `from`, every `import()`, relative ones resolved to files. Used by imports.test.ts.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative, resolve, sep } from 'node:path';
import ts from 'typescript';

export const ROOT = resolve(import.meta.dirname, '../../..');

/** Not read: installed and built code, recorded fixtures (histories and deliberately changed variants). */
const SKIP = new Set(['node_modules', 'dist', '.git', '.t1', 'reports', 'tests/fixtures']);

export interface Import {
  /** Repository-relative path of the importing file. */
  from: string;
  specifier: string;
  /** Repository-relative path of the imported file; undefined for a package or builtin. */
  to?: string;
  /** `import type`, `export type`, or every named binding `type`: erased at runtime. */
  typeOnly: boolean;
  line: number;
}

export function sourceFiles(dir = ROOT): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    const rel = relative(ROOT, path).split(sep).join('/');
    if (SKIP.has(rel) || SKIP.has(entry.name)) continue;
    if (entry.isDirectory()) out.push(...sourceFiles(path));
    else if (/\.m?ts$/.test(entry.name) && !entry.name.endsWith('.d.ts')) out.push(rel);
  }
  return out.sort();
}

function resolveRelative(from: string, specifier: string): string | undefined {
  const base = join(ROOT, dirname(from), specifier);
  const stem = base.replace(/\.(m?js)$/, '');
  for (const candidate of [base, `${stem}.ts`, `${stem}.mts`, join(base, 'index.ts')])
    if (existsSync(candidate) && statSync(candidate).isFile()) return relative(ROOT, candidate).split(sep).join('/');
  return undefined;
}

export function importsOf(file: string): Import[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const out: Import[] = [];
  const add = (node: ts.Node, specifier: string, typeOnly: boolean) => {
    const to = specifier.startsWith('.') ? resolveRelative(file, specifier) : undefined;
    if (specifier.startsWith('.') && !to) throw new Error(`${file}: cannot resolve ${specifier}`);
    out.push({ from: file, specifier, to, typeOnly, line: source.getLineAndCharacterOfPosition(node.getStart()).line + 1 });
  };
  const visit = (node: ts.Node) => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      const clause = node.importClause;
      const named = clause?.namedBindings && ts.isNamedImports(clause.namedBindings) ? clause.namedBindings.elements : undefined;
      const typeOnly = !!clause && (clause.isTypeOnly || (!clause.name && !!named && named.length > 0 && named.every((e) => e.isTypeOnly)));
      add(node, node.moduleSpecifier.text, typeOnly);
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      const named = node.exportClause && ts.isNamedExports(node.exportClause) ? node.exportClause.elements : undefined;
      add(node, node.moduleSpecifier.text, node.isTypeOnly || (!!named && named.length > 0 && named.every((e) => e.isTypeOnly)));
    } else if (
      ts.isCallExpression(node) &&
      node.expression.kind === ts.SyntaxKind.ImportKeyword &&
      node.arguments.length === 1 &&
      ts.isStringLiteralLike(node.arguments[0])
    ) {
      add(node, node.arguments[0].text, false);
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) && ts.isStringLiteral(node.argument.literal)) {
      add(node, node.argument.literal.text, true);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return out;
}

/** The top folder of a repository-relative path (`tests` for anything under tests/), or the file at the root. */
export const folderOf = (path: string) => path.split('/')[0];

export const isBuiltin = (specifier: string) => specifier.startsWith('node:') || builtinModules.includes(specifier.split('/')[0]);

/** Every elementary cycle's representative: one cycle per strongly connected component with more than one file (or a self-import). */
export function cycles(edges: Map<string, Set<string>>): string[][] {
  // Tarjan's strongly connected components, then one shortest cycle through each component's first file.
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  const strong = (v: string) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    onStack.add(v);
    for (const w of edges.get(v) ?? []) {
      if (!idx.has(w)) {
        strong(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || edges.get(v)?.has(v)) components.push(component.sort());
    }
  };
  for (const v of [...edges.keys()].sort()) if (!idx.has(v)) strong(v);
  return components.map((component) => {
    const inside = new Set(component);
    const start = component[0];
    // Breadth-first from start back to start, inside the component.
    const prev = new Map<string, string>();
    const queue = [start];
    while (queue.length) {
      const v = queue.shift()!;
      for (const w of edges.get(v) ?? []) {
        if (!inside.has(w)) continue;
        if (w === start) {
          const path = [v];
          while (path[0] !== start) path.unshift(prev.get(path[0])!);
          return [...path, start];
        }
        if (!prev.has(w)) {
          prev.set(w, v);
          queue.push(w);
        }
      }
    }
    return [start, start];
  });
}

/** A row of the README's Layout table: folders, and the folders their files may import from. */
export interface Layer {
  folders: string[];
  /** Folders imports may reach (the row's own folders always); `*` anything. */
  mayImport: string[];
  /** Folders only `import type` may reach, beyond mayImport. */
  typesFrom: string[];
}

/** Reads the Layout table of README.md: `| folder | may import from | types also from | what |`. */
export function layoutTable(readme: string): Layer[] {
  const section = readme.split(/^## Layout$/m)[1]?.split(/^## /m)[0];
  if (!section) throw new Error('README.md has no "## Layout" section');
  const rows = section.split('\n').filter((l) => l.startsWith('|'));
  const header = rows[0]?.split('|').map((c) => c.trim().toLowerCase());
  if (!header || header[1] !== 'folder' || header[2] !== 'may import from' || header[3] !== 'types also from')
    throw new Error('the Layout table must start | folder | may import from | types also from |');
  const folders = (cell: string) => [...cell.matchAll(/`([^`]+?)\/?`/g)].map((m) => m[1]);
  return rows.slice(2).map((row) => {
    const cells = row.split('|').map((c) => c.trim());
    return {
      folders: folders(cells[1]),
      mayImport: cells[2] === 'anything' ? ['*'] : folders(cells[2]),
      typesFrom: folders(cells[3]),
    };
  });
}
