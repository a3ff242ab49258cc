/**
 * Zod issues as the one-line messages recipes report: `KEY.PATH: expected number, got string`,
 * `train.bogus: unknown key (valid: lr, batch_size, ...)`. The value found at the path is read
 * from the input, so "got" names what the user wrote.
 */
import type { z } from 'zod';

export type IssuePath = readonly PropertyKey[];

/** `train.lr`, `aux_losses.0.weight` (the root is `(recipe)`). */
export function pathText(path: IssuePath): string {
  return path.length === 0 ? '(recipe)' : path.map(String).join('.');
}

/** The value at a path of a plain JSON-like input (undefined when absent). */
export function valueAt(input: unknown, path: IssuePath): unknown {
  let cur: unknown = input;
  for (const k of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[k as string];
  }
  return cur;
}

/** What a value is, for "got ...". */
export function describeValue(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return `string '${v.length > 40 ? `${v.slice(0, 40)}...` : v}'`;
  if (typeof v === 'number') return Number.isInteger(v) ? `integer ${v}` : `number ${v}`;
  return `${typeof v} ${String(v)}`;
}

function expectedText(expected: string): string {
  if (expected === 'int') return 'integer';
  if (expected === 'object') return 'mapping';
  if (expected === 'array') return 'list';
  return expected;
}

/** Keys of the strict object at a path of the schema, for "unknown key" messages (best effort). */
export type ValidKeys = (path: IssuePath) => string[] | null;

interface Formatted {
  path: IssuePath;
  message: string;
}

function formatOne(issue: z.core.$ZodIssue, input: unknown, base: IssuePath, validKeys: ValidKeys): Formatted[] {
  const path = [...base, ...issue.path];
  const got = valueAt(input, path);
  switch (issue.code) {
    case 'invalid_type': {
      if (got === undefined) return [{ path, message: `missing (expected ${expectedText(issue.expected)})` }];
      return [{ path, message: `expected ${expectedText(issue.expected)}, got ${describeValue(got)}` }];
    }
    case 'unrecognized_keys': {
      const valid = validKeys(path);
      return issue.keys.map((k) => ({ path: [...path, k], message: `unknown key${valid ? ` (valid keys here: ${valid.join(', ')})` : ''}` }));
    }
    case 'invalid_value':
      return [{ path, message: `expected one of ${issue.values.map((v) => String(v)).join(', ')}, got ${describeValue(got)}` }];
    case 'invalid_union': {
      // the branch that got furthest: the one whose first issue has the longest path
      const branches = issue.errors.map((errs) => errs.flatMap((e) => formatOne(e, input, path, validKeys)));
      const best = branches.filter((b) => b.length > 0).sort((a, b) => b[0]!.path.length - a[0]!.path.length)[0];
      if (best && best[0]!.path.length > path.length) return best;
      return [{ path, message: `expected ${describeUnion(issue)}, got ${describeValue(got)}` }];
    }
    case 'too_small':
    case 'too_big':
    case 'not_multiple_of':
    case 'invalid_format':
    case 'custom':
    default:
      return [{ path, message: `${issue.message}${got !== undefined && typeof got !== 'object' ? ` (got ${describeValue(got)})` : ''}` }];
  }
}

function describeUnion(issue: z.core.$ZodIssueInvalidUnion): string {
  const kinds = new Set<string>();
  for (const errs of issue.errors) for (const e of errs) if (e.code === 'invalid_type' && e.path.length === 0) kinds.add(expectedText(e.expected));
  return kinds.size > 0 ? [...kinds].join(' or ') : 'a valid value';
}

/** The issues as `PATH: message` strings, first one first. */
export function formatIssues(error: z.ZodError, input: unknown, validKeys: ValidKeys): { path: IssuePath; text: string }[] {
  return error.issues.flatMap((i) => formatOne(i, input, [], validKeys)).map((f) => ({ path: f.path, text: `${pathText(f.path)}: ${f.message}` }));
}
