/**
 * A small glob matcher for repo file paths (POSIX `/`-separated, relative). Our own so it behaves the same on every
 * Node >= 20 (path.matchesGlob is missing or experimental on early 20.x). Syntax:
 *
 * - `*` any run of characters within one path segment, `?` one character other than `/`;
 * - `**` as a whole segment: any number of segments, zero included (`**\/*.json` matches `a.json` and `x/y/a.json`);
 * - `[abc]`, `[a-z]`, `[!abc]` / `[^abc]` one character from (or not from) the set;
 * - `{a,b,c}` alternatives (not nested); `\` escapes the next character.
 *
 * Dot files match like any other (`*` matches `.gitattributes`). Patterns are anchored to the whole path, so
 * `*.safetensors` matches top-level files only; write `**\/*.safetensors` for any depth.
 */
import { HubError } from './hub-error.js';

function fail(pattern: string, why: string): never {
  throw new HubError('bad-input', `glob ${JSON.stringify(pattern)}: ${why}`);
}

const REGEX_SPECIAL = /[.*+?^${}()|[\]\\/]/;

function escapeChar(c: string): string {
  return REGEX_SPECIAL.test(c) ? `\\${c}` : c;
}

/** Translates one glob (without braces) into a regular-expression source. */
function translate(pattern: string, whole: string): string {
  let out = '';
  let i = 0;
  while (i < pattern.length) {
    const c = pattern[i]!;
    if (c === '*') {
      if (pattern[i + 1] === '*') {
        const atSegmentStart = i === 0 || pattern[i - 1] === '/';
        const next = pattern[i + 2];
        if (!atSegmentStart || (next !== undefined && next !== '/')) fail(whole, '"**" must be a whole path segment');
        if (next === '/') {
          out += '(?:[^/]*/)*'; // zero or more whole segments
          i += 3;
        } else {
          out += '.*'; // trailing `**`: everything below
          i += 2;
        }
      } else {
        out += '[^/]*';
        i += 1;
      }
    } else if (c === '?') {
      out += '[^/]';
      i += 1;
    } else if (c === '[') {
      const close = pattern.indexOf(']', i + 2);
      if (close < 0) fail(whole, 'unclosed "["');
      let body = pattern.slice(i + 1, close);
      let negate = false;
      if (body.startsWith('!') || body.startsWith('^')) {
        negate = true;
        body = body.slice(1);
      }
      if (body === '') fail(whole, 'empty character class');
      const cls = body.replace(/[\\\]^]/g, (m) => `\\${m}`);
      out += negate ? `[^/${cls}]` : `[${cls}]`;
      i = close + 1;
    } else if (c === '\\') {
      const next = pattern[i + 1];
      if (next === undefined) fail(whole, 'ends with a lone "\\"');
      out += escapeChar(next);
      i += 2;
    } else {
      out += escapeChar(c);
      i += 1;
    }
  }
  return out;
}

/** Expands the (non-nested) `{a,b}` groups of a pattern into plain patterns. */
function expandBraces(pattern: string, whole: string, depth = 0): string[] {
  if (depth > 8) fail(whole, 'too many "{...}" groups');
  let open = -1;
  for (let i = 0; i < pattern.length; i++) {
    if (pattern[i] === '\\') {
      i++;
      continue;
    }
    if (pattern[i] === '{') {
      open = i;
      break;
    }
    if (pattern[i] === '}') fail(whole, 'unbalanced "}"');
  }
  if (open < 0) return [pattern];
  const close = pattern.indexOf('}', open);
  if (close < 0) fail(whole, 'unclosed "{"');
  const inner = pattern.slice(open + 1, close);
  if (inner.includes('{')) fail(whole, 'nested "{...}" groups are not supported');
  const head = pattern.slice(0, open);
  const tail = pattern.slice(close + 1);
  return inner.split(',').flatMap((alt) => expandBraces(`${head}${alt}${tail}`, whole, depth + 1));
}

/** Compiles a glob into an anchored RegExp. */
export function globToRegExp(pattern: string): RegExp {
  if (pattern === '') fail(pattern, 'empty pattern');
  const alternatives = expandBraces(pattern.replace(/^\.\//, ''), pattern).map((p) => translate(p, pattern));
  return new RegExp(`^(?:${alternatives.join('|')})$`, 's');
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
