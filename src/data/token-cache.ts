/**
 * Token cache: a dataset is tokenised once and the result kept in one binary file next to the run,
 * reused while its sources, tokenizer and options are unchanged, rebuilt otherwise.
 *
 * File layout (little-endian):
 *   bytes 0-7    magic "MOETOKC1"
 *   bytes 8-11   uint32 H: byte length of the JSON header (space-padded so 12 + H is a multiple of 8)
 *   12 .. 12+H   JSON header: {format, version, sources: [{path, size, mtimeMs}], tokenizerHash,
 *                options, numDocs, numTokens, meta}
 *   then         int32  docOffsets[numDocs + 1]   (document d is tokens [off[d], off[d+1]))
 *                int32  ids[numTokens]
 *                uint8  mask[numTokens]
 * The key is: the sources' absolute paths, sizes and mtimes (in order), the tokenizer hash and the
 * tokenisation options (compared as canonical JSON). A missing, mismatched, truncated or otherwise
 * corrupt cache is rebuilt (never an error); the write goes to a temp file in the same directory and
 * is renamed into place, so a crash leaves the old cache or none, never a torn one.
 */
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { TokenizedDocument } from './documents.js';
import { writeAllSync, writeThroughTempFile } from '../io/atomic.js';

const MAGIC = 'MOETOKC1';
const FORMAT = 'moe-tune-token-cache';
const VERSION = 1;

export interface SourceStamp {
  path: string;
  size: number;
  mtimeMs: number;
}

export interface TokenCacheKey {
  sources: SourceStamp[];
  tokenizerHash: string;
  /** Whatever else changes the tokens (split mode, BOS, skipBadLines...): JSON values only. */
  options: Record<string, unknown>;
}

export interface TokenCacheHeader extends TokenCacheKey {
  format: typeof FORMAT;
  version: number;
  numDocs: number;
  numTokens: number;
  /** Extra results of the build to restore on a hit (e.g. the skipped-line count). */
  meta: Record<string, unknown>;
}

export interface TokenCacheContents {
  header: TokenCacheHeader;
  documents: TokenizedDocument[];
}

export interface TokenCacheResult {
  documents: TokenizedDocument[];
  meta: Record<string, unknown>;
  /** True when the cache file was reused. */
  hit: boolean;
  /** Why the cache was rebuilt (null on a hit). */
  reason: string | null;
}

if (new Uint8Array(new Uint32Array([1]).buffer)[0] !== 1) {
  throw new Error('token-cache: this module assumes a little-endian host');
}

/** Absolute path, size and mtime of each source file (one-line error naming a missing file). */
export function stampSources(paths: readonly string[]): SourceStamp[] {
  return paths.map((p) => {
    const abs = resolve(p);
    try {
      const st = statSync(abs);
      return { path: abs, size: st.size, mtimeMs: st.mtimeMs };
    } catch (e) {
      throw new Error(`${p}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
  });
}

/** JSON with object keys sorted, so equal values compare equal. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o).sort().filter((k) => o[k] !== undefined).map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`).join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

/** Writes documents to a cache file (atomically). */
export function writeTokenCache(path: string, key: TokenCacheKey, documents: readonly TokenizedDocument[],
  meta: Record<string, unknown> = {}): void {
  let numTokens = 0;
  for (const d of documents) {
    if (d.ids.length !== d.mask.length) throw new Error(`${path}: cannot cache a document whose ids and mask lengths differ`);
    numTokens += d.ids.length;
  }
  if (numTokens > 0x7fffffff) throw new Error(`${path}: ${numTokens} tokens exceed the cache format's int32 offsets`);
  const header: TokenCacheHeader = {
    format: FORMAT, version: VERSION, sources: key.sources, tokenizerHash: key.tokenizerHash,
    options: key.options, numDocs: documents.length, numTokens, meta,
  };
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  const pad = (8 - ((12 + json.length) % 8)) % 8;
  if (pad > 0) json = Buffer.concat([json, Buffer.alloc(pad, 0x20)]);
  const prefix = Buffer.alloc(12);
  prefix.write(MAGIC, 0, 'latin1');
  prefix.writeUInt32LE(json.length, 8);
  const offsets = new Int32Array(documents.length + 1);
  const ids = new Int32Array(numTokens);
  const mask = new Uint8Array(numTokens);
  let pos = 0;
  documents.forEach((d, i) => {
    offsets[i] = pos;
    ids.set(d.ids, pos);
    mask.set(d.mask, pos);
    pos += d.ids.length;
  });
  offsets[documents.length] = pos;
  mkdirSync(dirname(resolve(path)), { recursive: true });
  const parts = [prefix, json, new Uint8Array(offsets.buffer), new Uint8Array(ids.buffer), mask];
  try {
    writeThroughTempFile(path, (fd) => { for (const part of parts) writeAllSync(fd, part); });
  } catch (e) {
    throw new Error(`${path}: cannot write the token cache (${(e as Error).message})`);
  }
}

/** Reads a cache file; throws "PATH: reason" when it is not a valid cache. */
export function readTokenCache(path: string): TokenCacheContents {
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch (e) {
    throw new Error(`${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  if (buf.length < 12 || buf.toString('latin1', 0, 8) !== MAGIC) throw new Error(`${path}: not a moe-tune token cache (bad magic)`);
  const h = buf.readUInt32LE(8);
  if (12 + h > buf.length) throw new Error(`${path}: truncated token cache (header past end of file)`);
  let header: TokenCacheHeader;
  try {
    header = JSON.parse(buf.toString('utf8', 12, 12 + h)) as TokenCacheHeader;
  } catch (e) {
    throw new Error(`${path}: token cache header is not valid JSON (${(e as Error).message})`);
  }
  if (header.format !== FORMAT || header.version !== VERSION) throw new Error(`${path}: unsupported token cache format/version`);
  const { numDocs, numTokens } = header;
  if (!Number.isInteger(numDocs) || numDocs < 0 || !Number.isInteger(numTokens) || numTokens < 0) {
    throw new Error(`${path}: token cache header has bad numDocs/numTokens`);
  }
  const dataStart = 12 + h;
  const expected = dataStart + 4 * (numDocs + 1) + 4 * numTokens + numTokens;
  if (buf.length !== expected) throw new Error(`${path}: token cache is ${buf.length} bytes, expected ${expected} (truncated or corrupt)`);
  // Copy the int32 part when the buffer is not 4-byte aligned in memory.
  const int32Bytes = 4 * (numDocs + 1 + numTokens);
  const aligned = (buf.byteOffset + dataStart) % 4 === 0
    ? new Int32Array(buf.buffer, buf.byteOffset + dataStart, numDocs + 1 + numTokens)
    : (() => {
      const copy = new Uint8Array(int32Bytes);
      copy.set(buf.subarray(dataStart, dataStart + int32Bytes));
      return new Int32Array(copy.buffer);
    })();
  const offsets = aligned.subarray(0, numDocs + 1);
  const ids = aligned.subarray(numDocs + 1);
  const mask = new Uint8Array(buf.buffer, buf.byteOffset + dataStart + int32Bytes, numTokens);
  if (offsets[0] !== 0 || offsets[numDocs] !== numTokens) throw new Error(`${path}: token cache offsets are inconsistent`);
  const documents: TokenizedDocument[] = new Array(numDocs);
  for (let d = 0; d < numDocs; d++) {
    const a = offsets[d]!, b = offsets[d + 1]!;
    if (b < a || b > numTokens) throw new Error(`${path}: token cache offsets are inconsistent at document ${d}`);
    documents[d] = { ids: ids.subarray(a, b), mask: mask.subarray(a, b) };
  }
  return { header, documents };
}

/** Why `header` does not match `key`, or null when it does. */
export function cacheMismatch(header: TokenCacheKey, key: TokenCacheKey): string | null {
  if (header.sources.length !== key.sources.length) return 'the list of source files changed';
  for (let i = 0; i < key.sources.length; i++) {
    const a = header.sources[i]!, b = key.sources[i]!;
    if (a.path !== b.path) return `source ${i} is now ${b.path} (was ${a.path})`;
    if (a.size !== b.size || a.mtimeMs !== b.mtimeMs) return `${b.path} changed (size or modification time)`;
  }
  if (header.tokenizerHash !== key.tokenizerHash) return 'the tokenizer changed';
  if (canonical(header.options) !== canonical(key.options)) return 'the tokenisation options changed';
  return null;
}

/**
 * Returns the cached documents when `path` holds a cache matching `key`; otherwise runs `build`,
 * writes its documents (and meta) to `path` and returns them.
 */
export async function loadOrBuildTokenCache(path: string, key: TokenCacheKey,
  build: () => Promise<{ documents: TokenizedDocument[]; meta?: Record<string, unknown> }>
    | { documents: TokenizedDocument[]; meta?: Record<string, unknown> }): Promise<TokenCacheResult> {
  let reason: string;
  if (!existsSync(path)) {
    reason = 'no cache file';
  } else {
    try {
      const cached = readTokenCache(path);
      const mismatch = cacheMismatch(cached.header, key);
      if (mismatch === null) return { documents: cached.documents, meta: cached.header.meta ?? {}, hit: true, reason: null };
      reason = mismatch;
    } catch (e) {
      reason = (e as Error).message;
    }
  }
  const built = await build();
  const meta = built.meta ?? {};
  writeTokenCache(path, key, built.documents, meta);
  return { documents: built.documents, meta, hit: false, reason };
}
