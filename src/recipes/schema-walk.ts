/**
 * Looking inside the recipe schema by key path: which keys an object accepts (for "unknown key"
 * messages) and what type a leaf holds (so `--set train.lr=3e-4` is typed by the schema).
 */
import type { z } from 'zod';
import type { IssuePath } from './issue-format.js';

type AnySchema = z.core.$ZodType;

interface Def {
  type: string;
  innerType?: AnySchema;
  in?: AnySchema;
  out?: AnySchema;
  shape?: Record<string, AnySchema>;
  element?: AnySchema;
  valueType?: AnySchema;
  options?: AnySchema[];
  entries?: Record<string, string | number>;
  values?: unknown[];
}

function defOf(s: AnySchema): Def {
  return (s as unknown as { _zod: { def: Def } })._zod.def;
}

/** Strips optional / nullable / default / pipe wrappers. */
export function unwrap(s: AnySchema): AnySchema {
  let cur = s;
  for (let i = 0; i < 16; i++) {
    const d = defOf(cur);
    if ((d.type === 'optional' || d.type === 'nullable' || d.type === 'default' || d.type === 'prefault' || d.type === 'readonly' || d.type === 'catch') && d.innerType) cur = d.innerType;
    else if (d.type === 'pipe' && d.in) cur = d.in;
    else break;
  }
  return cur;
}

function objectOptions(s: AnySchema): AnySchema[] {
  const u = unwrap(s);
  const d = defOf(u);
  if (d.type === 'union' && d.options) return d.options.flatMap(objectOptions);
  return d.type === 'object' || d.type === 'record' ? [u] : [];
}

export type SchemaStep = { kind: 'ok'; schema: AnySchema } | { kind: 'unknown'; valid: string[] | null } | { kind: 'not-container' };

/** The schema one key below `s`. */
export function childSchema(s: AnySchema, key: string): SchemaStep {
  const u = unwrap(s);
  const d = defOf(u);
  if (d.type === 'array' && d.element) {
    return /^\d+$/.test(key) ? { kind: 'ok', schema: d.element } : { kind: 'unknown', valid: ['<index>'] };
  }
  const objects = objectOptions(u);
  if (objects.length === 0) return { kind: 'not-container' };
  const valid: string[] = [];
  for (const o of objects) {
    const od = defOf(o);
    if (od.type === 'record' && od.valueType) return { kind: 'ok', schema: od.valueType };
    const shape = od.shape ?? {};
    if (Object.hasOwn(shape, key)) return { kind: 'ok', schema: shape[key]! };
    valid.push(...Object.keys(shape));
  }
  return { kind: 'unknown', valid: [...new Set(valid)] };
}

/** The schema at a path, or why there is none. */
export function schemaAt(root: AnySchema, path: IssuePath): { schema: AnySchema } | { error: string } {
  let cur = root;
  for (let i = 0; i < path.length; i++) {
    const key = String(path[i]);
    const step = childSchema(cur, key);
    const where = path.slice(0, i).map(String).join('.') || '(recipe)';
    if (step.kind === 'not-container') return { error: `${where} is a single value, it has no key '${key}'` };
    if (step.kind === 'unknown') return { error: `unknown key '${key}' in ${where}${step.valid ? ` (valid keys: ${step.valid.join(', ')})` : ''}` };
    cur = step.schema;
  }
  return { schema: cur };
}

/** Keys accepted at a path (null when the path is not a strict object). */
export function validKeysAt(root: AnySchema, path: IssuePath): string[] | null {
  const found = schemaAt(root, path);
  if ('error' in found) return null;
  const objects = objectOptions(found.schema);
  if (objects.length === 0 || objects.some((o) => defOf(o).type === 'record')) return null;
  return [...new Set(objects.flatMap((o) => Object.keys(defOf(o).shape ?? {})))];
}

export type LeafKind = 'number' | 'string' | 'boolean' | 'enum' | 'other';

/** What kind of scalar a schema holds (after unwrapping); 'other' for lists, mappings, unions. */
export function leafKind(s: AnySchema): LeafKind {
  const d = defOf(unwrap(s));
  if (d.type === 'number' || d.type === 'int') return 'number';
  if (d.type === 'string') return 'string';
  if (d.type === 'boolean') return 'boolean';
  if (d.type === 'enum' || (d.type === 'literal' && (d.values ?? []).every((v) => typeof v === 'string'))) return 'enum';
  return 'other';
}

/** Whether null is accepted at this schema (nullable somewhere in its wrappers). */
export function acceptsNull(s: AnySchema): boolean {
  let cur = s;
  for (let i = 0; i < 16; i++) {
    const d = defOf(cur);
    if (d.type === 'nullable') return true;
    if (d.innerType) cur = d.innerType;
    else return false;
  }
  return false;
}
