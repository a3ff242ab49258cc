/**
 * Loading a recipe: a file path or the NAME of a file in the package's recipes/ folder, parsed as
 * YAML, merged over its `extends:` parents, with its `tiny:` block merged on top for the tiny
 * variant, then the `--set` overrides, validated by the schema and by the registries. Every
 * problem is ONE line naming where it comes from and the key path:
 *
 *   recipes/x.yaml: train.lr: expected number, got string '3e-4x'
 *   recipes/x.yaml: tiny.train.bogus: unknown key (valid keys here: lr, batch_size, ...)
 *   --set train.lr=abc: expected a number, got 'abc'
 *
 * The full variant is validated even when the tiny one is asked for, so a broken file is always
 * reported.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { compileRecipe, RecipeKeyError, type CompiledRecipe } from './compile.js';
import { formatIssues, pathText, type IssuePath } from './issue-format.js';
import { deepMerge, hasPath, isMapping } from './merge.js';
import { RecipeSchema, type Recipe } from './schema.js';
import { validKeysAt } from './schema-walk.js';
import { applySetOverride, parseSetOverride, type SetOverride } from './set-override.js';

/** The recipes shipped with moe-tune (the package's recipes/ folder). */
export const RECIPES_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../recipes');

export type RecipeVariant = 'full' | 'tiny';

export interface LoadRecipeOptions {
  /** Use the tiny variant (the `tiny:` block merged over the recipe). */
  tiny?: boolean;
  /** `key.path=value` overrides, applied last. */
  sets?: readonly string[];
  /** Where NAMEs are looked up (default RECIPES_DIR). */
  recipesDir?: string;
}

export interface ResolvedRecipe {
  recipe: Recipe;
  /** The recipe file (absolute). */
  file: string;
  /** Files merged, parent first. */
  chain: string[];
  variant: RecipeVariant;
  sets: string[];
  compiled: CompiledRecipe;
}

/** Recipe files shipped in a folder (NAME -> file), sorted. */
export function listRecipes(dir = RECIPES_DIR): { name: string; file: string }[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  return names.filter((n) => /\.ya?ml$/.test(n)).sort().map((n) => ({ name: n.replace(/\.ya?ml$/, ''), file: path.join(dir, n) }));
}

/** A path to an existing file, or the file of a recipe NAME. */
export function findRecipeFile(ref: string, dir = RECIPES_DIR): string {
  if (fs.existsSync(ref) && fs.statSync(ref).isFile()) return path.resolve(ref);
  for (const ext of ['.yaml', '.yml']) {
    const f = path.join(dir, `${ref}${ext}`);
    if (!ref.includes('/') && fs.existsSync(f)) return f;
  }
  const looksLikePath = ref.includes('/') || /\.ya?ml$/.test(ref);
  const names = listRecipes(dir).map((r) => r.name);
  throw new Error(looksLikePath
    ? `${ref}: recipe file not found`
    : `recipe '${ref}': no such file, and no recipe of that name in ${dir} (available: ${names.join(', ') || 'none'})`);
}

interface RawFile {
  file: string;
  raw: Record<string, unknown>;
}

/** Shown paths: relative to the working directory when shorter. */
function shown(file: string): string {
  const rel = path.relative(process.cwd(), file);
  return rel && !rel.startsWith('..') && rel.length < file.length ? rel : file;
}

function readYamlMapping(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`${shown(file)}: cannot read the recipe (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  let value: unknown;
  try {
    value = parseYaml(text, { uniqueKeys: true });
  } catch (err) {
    if (err instanceof YAMLParseError) {
      const pos = err.linePos?.[0];
      const msg = err.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
      throw new Error(`${shown(file)}:${pos ? `${pos.line}:${pos.col}:` : ''} invalid YAML: ${msg}`);
    }
    throw err;
  }
  if (!isMapping(value)) throw new Error(`${shown(file)}: a recipe must be a YAML mapping of keys, got ${value === null ? 'an empty file' : Array.isArray(value) ? 'a list' : typeof value}`);
  return value;
}

/** The file and its `extends:` parents, parent first. */
function readChain(file: string, dir: string, seen: string[] = []): RawFile[] {
  if (seen.includes(file)) throw new Error(`${shown(file)}: extends cycle (${[...seen, file].map(shown).join(' -> ')})`);
  if (seen.length >= 8) throw new Error(`${shown(file)}: extends chain deeper than 8 files`);
  const raw = readYamlMapping(file);
  const ext = raw['extends'];
  if (ext === undefined || ext === null) return [{ file, raw }];
  if (typeof ext !== 'string' || ext.trim() === '') throw new Error(`${shown(file)}: extends: expected a recipe file name, got ${JSON.stringify(ext)}`);
  const local = path.resolve(path.dirname(file), ext);
  let parent: string;
  if (fs.existsSync(local)) parent = local;
  else {
    try {
      parent = findRecipeFile(ext.replace(/\.ya?ml$/, ''), path.dirname(file));
    } catch {
      try {
        parent = findRecipeFile(ext.replace(/\.ya?ml$/, ''), dir);
      } catch {
        throw new Error(`${shown(file)}: extends: ${ext}: recipe file not found`);
      }
    }
  }
  return [...readChain(parent, dir, [...seen, file]), { file, raw }];
}

function withoutMeta(raw: Record<string, unknown>): Record<string, unknown> {
  const { extends: _e, tiny: _t, ...rest } = raw;
  return rest;
}

/** The file (child-most first) that set a key path, for messages. */
function originOf(chain: readonly RawFile[], p: IssuePath, inTiny: boolean): string {
  for (let i = chain.length - 1; i >= 0; i--) {
    const raw = chain[i]!.raw;
    if (hasPath(inTiny ? raw['tiny'] : raw, p)) return shown(chain[i]!.file);
  }
  return shown(chain[chain.length - 1]!.file);
}

function startsWith(p: IssuePath, prefix: readonly string[]): boolean {
  return prefix.every((k, i) => String(p[i]) === k) || p.every((k, i) => String(k) === prefix[i]);
}

interface Layers {
  chain: RawFile[];
  tiny: Record<string, unknown> | null;
  sets: SetOverride[];
}

/** Where a problem at a path comes from: a --set, the tiny block, or a file. */
function attribute(layers: Layers, p: IssuePath, text: string): string {
  for (let i = layers.sets.length - 1; i >= 0; i--) {
    const s = layers.sets[i]!;
    if (startsWith(p, s.path)) return `--set ${s.source}: ${p.length > s.path.length ? text : text.slice(text.indexOf(': ') + 2)}`;
  }
  if (layers.tiny && hasPath(layers.tiny, p)) return `${originOf(layers.chain, p, true)}: tiny.${text}`;
  return `${originOf(layers.chain, p, false)}: ${text}`;
}

function validate(candidate: Record<string, unknown>, layers: Layers): { recipe: Recipe; compiled: CompiledRecipe } {
  const parsed = RecipeSchema.safeParse(candidate);
  if (!parsed.success) {
    const issues = formatIssues(parsed.error, candidate, (p) => validKeysAt(RecipeSchema, p));
    const first = issues[0]!;
    const more = issues.length > 1 ? ` (and ${issues.length - 1} more problem${issues.length > 2 ? 's' : ''})` : '';
    throw new Error(`${attribute(layers, first.path, first.text)}${more}`);
  }
  try {
    return { recipe: parsed.data, compiled: compileRecipe(parsed.data) };
  } catch (err) {
    if (err instanceof RecipeKeyError) throw new Error(attribute(layers, err.path, `${pathText(err.path)}: ${err.message}`));
    throw err;
  }
}

/** Loads, merges, overrides and validates a recipe (see the file comment). */
export function loadRecipe(ref: string, opts: LoadRecipeOptions = {}): ResolvedRecipe {
  const dir = opts.recipesDir ?? RECIPES_DIR;
  const file = findRecipeFile(ref, dir);
  const chain = readChain(file, dir);
  const merged = chain.reduce<Record<string, unknown>>((acc, f) => deepMerge(acc, f.raw) as Record<string, unknown>, {});
  const base = withoutMeta(merged);
  const full = validate(base, { chain, tiny: null, sets: [] });
  let variant: RecipeVariant = 'full';
  let candidate = base;
  let tiny: Record<string, unknown> | null = null;
  let result = full;
  if (opts.tiny) {
    const t = merged['tiny'];
    if (t === undefined || t === null) throw new Error(`${shown(file)}: no tiny: block, so the recipe has no tiny variant`);
    if (!isMapping(t)) throw new Error(`${originOf(chain, ['tiny'], false)}: tiny: expected a mapping of overrides, got ${Array.isArray(t) ? 'a list' : typeof t}`);
    tiny = t;
    candidate = deepMerge(base, t) as Record<string, unknown>;
    variant = 'tiny';
    result = validate(candidate, { chain, tiny, sets: [] });
  }
  const sets: SetOverride[] = [];
  for (const text of opts.sets ?? []) {
    const o = parseSetOverride(text, RecipeSchema);
    sets.push(o);
    candidate = applySetOverride(candidate, o);
  }
  if (sets.length > 0) result = validate(candidate, { chain, tiny, sets });
  return { recipe: result.recipe, file, chain: chain.map((c) => c.file), variant, sets: [...(opts.sets ?? [])], compiled: result.compiled };
}
