/**
 * `--set key.path=value` overrides, typed by the recipe schema: a number key takes a number, a
 * boolean key true / false, a string or enum key the text as written, and anything else (lists,
 * mappings, schedules) a YAML value (`--set seeds=[0,1,2]`, `--set aux_losses.0.weight=0.05`).
 * `null` sets a nullable key to null. An unknown path or a value of the wrong type is one error
 * line naming the --set.
 */
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { acceptsNull, leafKind, schemaAt } from './schema-walk.js';
import { isMapping } from './merge.js';

export interface SetOverride {
  /** The text as given. */
  source: string;
  path: string[];
  value: unknown;
}

/** Parses and types one `key.path=value` against the schema (throws one line). */
export function parseSetOverride(text: string, schema: z.core.$ZodType): SetOverride {
  const eq = text.indexOf('=');
  if (eq <= 0) throw new Error(`--set '${text}': expected key.path=value`);
  const key = text.slice(0, eq).trim();
  const raw = text.slice(eq + 1);
  const path = key.split('.');
  if (path.some((p) => p === '')) throw new Error(`--set '${text}': empty key in '${key}'`);
  if (path[0] === 'tiny' || path[0] === 'extends') throw new Error(`--set '${text}': '${path[0]}' is not a recipe setting (use --tiny for the tiny variant)`);
  const found = schemaAt(schema, path);
  if ('error' in found) throw new Error(`--set ${key}: ${found.error}`);
  const s = found.schema;
  const trimmed = raw.trim();
  if (trimmed === 'null' && acceptsNull(s)) return { source: text, path, value: null };
  const kind = leafKind(s);
  let value: unknown;
  switch (kind) {
    case 'number': {
      const n = Number(trimmed);
      if (trimmed === '' || !Number.isFinite(n)) throw new Error(`--set ${key}: expected a number, got '${raw}'`);
      value = n;
      break;
    }
    case 'boolean':
      if (trimmed !== 'true' && trimmed !== 'false') throw new Error(`--set ${key}: expected true or false, got '${raw}'`);
      value = trimmed === 'true';
      break;
    case 'string':
    case 'enum':
      value = raw;
      break;
    default:
      try {
        value = parseYaml(raw);
      } catch (err) {
        throw new Error(`--set ${key}: '${raw}' is not a valid YAML value (${(err as Error).message.split('\n')[0]})`);
      }
  }
  return { source: text, path, value };
}

/** Applies an override to a plain recipe object (a copy is returned); list indices must exist or append. */
export function applySetOverride(recipe: Record<string, unknown>, o: SetOverride): Record<string, unknown> {
  const out = structuredClone(recipe);
  let cur: Record<string, unknown> | unknown[] = out;
  for (let i = 0; i < o.path.length - 1; i++) {
    const k = o.path[i]!;
    let next: unknown = Array.isArray(cur) ? cur[Number(k)] : cur[k];
    if (next === undefined || next === null) {
      const nextKey = o.path[i + 1]!;
      next = /^\d+$/.test(nextKey) ? [] : {};
      if (Array.isArray(cur)) cur[Number(k)] = next;
      else cur[k] = next;
    }
    if (!isMapping(next) && !Array.isArray(next)) {
      throw new Error(`--set ${o.path.join('.')}: ${o.path.slice(0, i + 1).join('.')} is ${typeof next}, not a mapping`);
    }
    cur = next as Record<string, unknown> | unknown[];
  }
  const last = o.path[o.path.length - 1]!;
  if (Array.isArray(cur)) {
    const idx = Number(last);
    if (idx > cur.length) throw new Error(`--set ${o.path.join('.')}: index ${idx} is past the end of the list (${cur.length} items)`);
    cur[idx] = o.value;
  } else cur[last] = o.value;
  return out;
}
