/**
 * The house's floors (../shared/ARCHITECTURE.md "Layers"), checked on the import graph of src/: every import points
 * to the same floor or one below, folders import each other in one direction only, no runtime import cycle between
 * files, and the kernel backends see only the Backend interface. Type-only imports may close a loop between two
 * files of one concept (Tensor and its TapeNode; a config and the layout that reads it): TypeScript erases them.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from './helpers/python.js';

/** Top to bottom; folders on one floor may import each other (one direction only, see below). */
const FLOORS: readonly (readonly string[])[] = [
  ['cli'],
  ['recipes'],
  ['report'],
  ['train', 'eval', 'hub', 'convert'],
  ['adapters', 'lora', 'quant'],
  ['models'],
  ['routers', 'losses'],
  ['data', 'io'],
  ['tensor'],
];

const SRC = path.join(repoRoot, 'src');

interface Import { target: string; typeOnly: boolean; line: number }

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? sourceFiles(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** Relative imports and re-exports of a file, resolved to .ts files (`./x.js` -> x.ts, a folder -> its index.ts). */
function importsOf(file: string): Import[] {
  const text = fs.readFileSync(file, 'utf8');
  const re = /^\s*(?:import|export)\s+(type\s+)?(?:[^'";]*?\s+from\s+)?['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)/gm;
  const out: Import[] = [];
  for (let m = re.exec(text); m; m = re.exec(text)) {
    const spec = (m[2] ?? m[3])!;
    let target = path.resolve(path.dirname(file), spec.replace(/\.js$/, '.ts'));
    if (!fs.existsSync(target) && fs.existsSync(path.join(target.replace(/\.ts$/, ''), 'index.ts'))) target = path.join(target.replace(/\.ts$/, ''), 'index.ts');
    out.push({ target, typeOnly: m[1] !== undefined, line: text.slice(0, m.index).split('\n').length });
  }
  return out;
}

const folderOf = (file: string): string => path.relative(SRC, file).split(path.sep)[0]!;
const floorOf = (folder: string): number => FLOORS.findIndex((f) => f.includes(folder));

describe('import graph of src/', () => {
  const files = sourceFiles(SRC);
  const graph = new Map(files.map((f) => [f, importsOf(f)]));

  it('finds the files and every relative import resolves', () => {
    expect(files.length).toBeGreaterThan(200);
    const missing = [...graph].flatMap(([f, imps]) => imps.filter((i) => !fs.existsSync(i.target)).map((i) => `${path.relative(repoRoot, f)}:${i.line}`));
    expect(missing).toEqual([]);
  });

  it('every folder of src/ has a floor', () => {
    const folders = [...new Set(files.map(folderOf))].filter((f) => !f.endsWith('.ts'));
    expect(folders.filter((f) => floorOf(f) < 0)).toEqual([]);
  });

  it('no import points to a higher floor', () => {
    const up: string[] = [];
    for (const [file, imps] of graph) {
      const from = folderOf(file);
      if (from.endsWith('.ts')) continue; // src/index.ts: the public API re-exports every floor
      for (const i of imps) {
        const to = folderOf(i.target);
        if (floorOf(to) < floorOf(from)) up.push(`${path.relative(repoRoot, file)}:${i.line} (${from}) imports ${path.relative(repoRoot, i.target)} (${to})`);
      }
    }
    expect(up).toEqual([]);
  });

  it('folders on one floor import each other in one direction only', () => {
    const pairs = new Set<string>();
    for (const [file, imps] of graph) for (const i of imps) {
      const a = folderOf(file);
      const b = folderOf(i.target);
      if (a !== b && !a.endsWith('.ts')) pairs.add(`${a} -> ${b}`);
    }
    const both = [...pairs].filter((p) => { const [a, b] = p.split(' -> '); return pairs.has(`${b} -> ${a}`); });
    expect(both).toEqual([]);
  });

  it('no runtime import cycle between files', () => {
    // Tarjan's strongly connected components over the runtime (non type-only) imports
    const index = new Map<string, number>();
    const low = new Map<string, number>();
    const stack: string[] = [];
    const onStack = new Set<string>();
    const cycles: string[][] = [];
    let next = 0;
    const visit = (v: string): void => {
      index.set(v, next);
      low.set(v, next++);
      stack.push(v);
      onStack.add(v);
      for (const { target: w, typeOnly } of graph.get(v) ?? []) {
        if (typeOnly || !graph.has(w)) continue;
        if (!index.has(w)) {
          visit(w);
          low.set(v, Math.min(low.get(v)!, low.get(w)!));
        } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
      if (low.get(v) === index.get(v)) {
        const scc: string[] = [];
        let w: string;
        do {
          w = stack.pop()!;
          onStack.delete(w);
          scc.push(path.relative(repoRoot, w));
        } while (w !== v);
        if (scc.length > 1) cycles.push(scc);
      }
    };
    for (const f of files) if (!index.has(f)) visit(f);
    expect(cycles).toEqual([]);
  });

  it('the kernel backends import only the Backend interface and each other', () => {
    const backends = path.join(SRC, 'tensor', 'backends');
    const allowed = (t: string): boolean => t.startsWith(backends + path.sep) || t === path.join(SRC, 'tensor', 'backend.ts');
    const bad = [...graph].filter(([f]) => f.startsWith(path.join(backends, 'js')) || f.startsWith(path.join(backends, 'native')))
      .flatMap(([f, imps]) => imps.filter((i) => !allowed(i.target)).map((i) => `${path.relative(repoRoot, f)}:${i.line} imports ${path.relative(repoRoot, i.target)}`));
    expect(bad).toEqual([]);
  });
});
