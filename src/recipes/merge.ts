/**
 * Deep merge of recipe objects (`extends:` parents, the `tiny:` block, `--set`): mappings merge
 * key by key, everything else (lists, scalars, null) replaces. Inputs are not modified.
 */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export function isMapping(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

export function deepMerge(base: unknown, over: unknown): unknown {
  if (!isMapping(base) || !isMapping(over)) return structuredClone(over);
  const out: Record<string, unknown> = structuredClone(base);
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) continue;
    out[k] = Object.hasOwn(out, k) ? deepMerge(out[k], v) : structuredClone(v);
  }
  return out;
}

/** Whether a key path is present in a plain object. */
export function hasPath(obj: unknown, path: readonly PropertyKey[]): boolean {
  let cur: unknown = obj;
  for (const k of path) {
    if (cur === null || typeof cur !== 'object' || !Object.hasOwn(cur, k as string)) return false;
    cur = (cur as Record<string, unknown>)[k as string];
  }
  return true;
}
