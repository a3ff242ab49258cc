/**
 * The recursive file list of a repo revision (GET /api/{models|datasets}/<repo>/tree/<rev>?recursive=true,
 * paginated with `Link: <...>; rel="next"` as huggingface_hub reads it), streamed: each page's JSON array is parsed
 * entry by entry as its bytes arrive, so a listing of millions of entries is never held as one string or one
 * parsed array, and a refusal (too many entries, an entry too large) stops reading at once. Our own because
 * @huggingface/hub's listFiles parses each page whole and follows `next` links without limit (a server sending
 * empty pages with a `next` link forever is an endless loop there).
 *
 * Limits: at most `maxPages` pages, `maxEntries` entries, `maxEntryBytes` per entry; a `next` link must stay on the
 * endpoint's origin.
 */
import { HubError } from './hub-error.js';
import { quoteName } from './remote-path.js';
import type { RepoRef } from './repo-id.js';

export interface TreeEntry {
  type: string;
  path: string;
  size?: number;
  oid?: string;
  lfs?: { oid: string; size: number; pointerSize?: number };
}

export interface ListTreeOptions {
  endpoint: string;
  fetch: typeof fetch;
  /** For messages: e.g. "repo org/name at revision main (<sha>)". */
  context: string;
  /** Default 10 000 pages. */
  maxPages?: number;
  /** Default 200 000 entries. */
  maxEntries?: number;
  /** Default 64 KiB per entry. */
  maxEntryBytes?: number;
}

export const DEFAULT_MAX_LIST_PAGES = 10_000;
export const DEFAULT_MAX_LIST_ENTRIES = 200_000;

/** Incremental parser of one JSON array of objects: `push(text)` returns the objects completed by `text`. */
export class JsonArrayStream {
  private depth = 0;
  private inString = false;
  private escaped = false;
  private pending = '';
  private ended = false;

  constructor(private readonly maxEntryChars: number, private readonly where: string) {}

  push(text: string): unknown[] {
    const out: unknown[] = [];
    let start = this.depth >= 2 ? 0 : -1;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (c === 92) this.escaped = true; // backslash
        else if (c === 34) this.inString = false; // quote
        continue;
      }
      if (c === 32 || c === 10 || c === 13 || c === 9) continue;
      if (this.ended) throw new HubError('protocol', `${this.where}: unexpected data after the end of the listing`);
      if (this.depth === 0) {
        if (c !== 91) throw new HubError('protocol', `${this.where}: the listing is not a JSON array`);
        this.depth = 1;
        continue;
      }
      if (c === 34) {
        if (this.depth === 1) throw new HubError('protocol', `${this.where}: a listing entry is not an object`);
        this.inString = true;
        continue;
      }
      if (c === 123 || c === 91) {
        if (this.depth === 1) {
          if (c !== 123) throw new HubError('protocol', `${this.where}: a listing entry is not an object`);
          start = i;
        }
        this.depth++;
      } else if (c === 125 || c === 93) {
        this.depth--;
        if (this.depth === 0) {
          this.ended = true;
        } else if (this.depth === 1) {
          const piece = this.pending + text.slice(start, i + 1);
          this.pending = '';
          start = -1;
          if (piece.length > this.maxEntryChars) throw new HubError('protocol', `${this.where}: a listing entry is longer than ${this.maxEntryChars} characters`);
          try {
            out.push(JSON.parse(piece));
          } catch (err) {
            throw new HubError('protocol', `${this.where}: a listing entry is not valid JSON (${(err as Error).message})`);
          }
        }
      } else if (this.depth === 1 && c !== 44) {
        throw new HubError('protocol', `${this.where}: a listing entry is not an object`);
      }
    }
    if (start >= 0) {
      this.pending += text.slice(start);
      if (this.pending.length > this.maxEntryChars) throw new HubError('protocol', `${this.where}: a listing entry is longer than ${this.maxEntryChars} characters`);
    }
    return out;
  }

  /** Throws unless the array was closed. */
  end(): void {
    if (!this.ended) throw new HubError('protocol', `${this.where}: the listing ended before its closing "]"`);
  }
}

/** The `next` URL of a Link header, or undefined. */
export function nextLink(header: string | null): string | undefined {
  if (header === null) return undefined;
  for (const part of header.split(',')) {
    const m = /<([^>]*)>\s*;(.*)$/.exec(part.trim());
    if (m && /\brel\s*=\s*"?next"?/.test(m[2]!)) return m[1];
  }
  return undefined;
}

/** Streams the entries of the recursive listing of `repo` at `revision`; see the file comment. */
export async function* listTree(repo: RepoRef, revision: string, o: ListTreeOptions): AsyncGenerator<TreeEntry> {
  const maxPages = o.maxPages ?? DEFAULT_MAX_LIST_PAGES;
  const maxEntries = o.maxEntries ?? DEFAULT_MAX_LIST_ENTRIES;
  const maxEntryBytes = o.maxEntryBytes ?? 64 * 1024;
  const origin = new URL(o.endpoint).origin;
  let url: string | undefined = `${o.endpoint}/api/${repo.type}s/${repo.id}/tree/${encodeURIComponent(revision)}?recursive=true&expand=false`;
  let pages = 0;
  let entries = 0;
  while (url !== undefined) {
    if (++pages > maxPages) {
      throw new HubError('protocol', `${o.context}: the file list runs past ${maxPages} pages (${entries} entries so far); refusing (a server that keeps sending "next" links)`);
    }
    const res = await o.fetch(url, { headers: { Accept: 'application/json' } });
    if (!res.ok) {
      await res.body?.cancel().catch(() => undefined);
      throw new HubError('protocol', `${o.context}: the file list request answered HTTP ${res.status}`, res.status);
    }
    const parser = new JsonArrayStream(maxEntryBytes, `${o.context}: file list page ${pages}`);
    const decoder = new TextDecoder('utf-8', { fatal: true });
    const reader = res.body?.getReader();
    if (reader === undefined) throw new HubError('protocol', `${o.context}: the file list page ${pages} has no body`);
    try {
      for (;;) {
        const { done, value } = await reader.read();
        const text = done ? decoder.decode() : decoder.decode(value, { stream: true });
        for (const e of parser.push(text)) {
          if (++entries > maxEntries) throw new HubError('protocol', `${o.context}: the file list has more than ${maxEntries} entries; refusing`);
          const t = e as Partial<TreeEntry>;
          if (typeof t.path !== 'string' || typeof t.type !== 'string') {
            throw new HubError('protocol', `${o.context}: listing entry ${quoteName(JSON.stringify(e).slice(0, 80))} lacks a path or type`);
          }
          yield t as TreeEntry;
        }
        if (done) break;
      }
      parser.end();
    } finally {
      await reader.cancel().catch(() => undefined);
    }
    const next = nextLink(res.headers.get('link'));
    if (next !== undefined) {
      const nu: URL = new URL(next, url);
      if (nu.origin !== origin) throw new HubError('protocol', `${o.context}: the file list's next page points to another origin (${nu.origin}); refusing`);
      url = nu.href;
    } else {
      url = undefined;
    }
  }
}
