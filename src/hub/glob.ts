/**
 * `--include` / `--exclude` patterns for repo file paths, with the semantics of huggingface_hub's
 * `allow_patterns` / `ignore_patterns`: Python's `fnmatch.fnmatch` on the whole POSIX path (the rules of
 * `fnmatch.translate`, re-implemented here so both clients select the same files), plus huggingface_hub's rule
 * that a pattern ending in `/` means everything under that directory. So:
 *
 * - `*` matches any run of characters, `/` included: `*.json` matches `config.json` and `tokenizer/vocab.json`;
 * - `?` matches one character (any, `/` included);
 * - `[abc]`, `[a-z]` one character from the set, `[!abc]` one not in it; an unclosed `[` is a literal `[`;
 * - everything else is literal (no `{a,b}` alternatives, no backslash escapes, `**` is just `*` twice);
 * - matching is case-sensitive, and dot files match like any other (`*` matches `.gitattributes`).
 */
import { HubError } from './hub-error.js';

function fail(pattern: string, why: string): never {
  throw new HubError('bad-input', `glob ${JSON.stringify(pattern)}: ${why}`);
}

const REGEX_SPECIAL = /[.*+?^${}()|[\]\\/]/;

function escapeChar(c: string): string {
  return REGEX_SPECIAL.test(c) ? `\\${c}` : c;
}

/** The body of a `[...]` set as a JS character class, as fnmatch.translate builds it. */
function translateSet(stuff: string): string {
  if (stuff === '') return '(?!)'; // an empty set never matches
  if (stuff === '!') return '[^]'; // "[!]": any one character
  let negate = false;
  let body = stuff;
  if (body.startsWith('!')) {
    negate = true;
    body = body.slice(1);
  }
  // inside a JS class: escape the backslash, a leading `]` or `^`, and `[`
  let out = '';
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!;
    if (c === '\\' || c === '[' || c === ']' || (c === '^' && i === 0)) out += `\\${c}`;
    else out += c;
  }
  return `[${negate ? '^' : ''}${out}]`;
}

/** Translates one pattern into a regular-expression source (fnmatch.translate). */
function translate(pattern: string): string {
  let out = '';
  let i = 0;
  const n = pattern.length;
  while (i < n) {
    const c = pattern[i]!;
    i++;
    if (c === '*') {
      if (!out.endsWith('[^]*')) out += '[^]*';
    } else if (c === '?') {
      out += '[^]';
    } else if (c === '[') {
      let j = i;
      if (j < n && pattern[j] === '!') j++;
      if (j < n && pattern[j] === ']') j++;
      while (j < n && pattern[j] !== ']') j++;
      if (j >= n) {
        out += '\\[';
      } else {
        out += translateSet(pattern.slice(i, j));
        i = j + 1;
      }
    } else {
      out += escapeChar(c);
    }
  }
  return out;
}

/** Compiles a pattern into an anchored RegExp (a pattern ending in `/` selects everything under it). */
export function globToRegExp(pattern: string): RegExp {
  if (pattern === '') fail(pattern, 'empty pattern');
  const p = pattern.endsWith('/') ? `${pattern}*` : pattern;
  try {
    return new RegExp(`^(?:${translate(p)})$`, 'u');
  } catch {
    return /(?!)/; // a set with a reversed range (`[z-a]`): fnmatch drops it, so the pattern matches nothing
  }
}

/** A predicate over repo paths: true when some `include` pattern matches (all paths if none) and no `exclude` does. */
export function pathFilter(include: readonly string[] = [], exclude: readonly string[] = []): (p: string) => boolean {
  const inc = include.map(globToRegExp);
  const exc = exclude.map(globToRegExp);
  return (p) => (inc.length === 0 || inc.some((r) => r.test(p))) && !exc.some((r) => r.test(p));
}

/** True when `p` matches `pattern`. */
export function matchesGlob(p: string, pattern: string): boolean {
  return globToRegExp(pattern).test(p);
}
