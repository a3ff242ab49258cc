/**
 * Streaming a text file line by line with a bound on one line's length, so a JSONL file with a
 * 300 MB line is one clear error ("FILE:LINE: line longer than ...") instead of V8 running out of
 * memory: the file is read in 1 MiB chunks and at most `maxLineBytes` of one line is held. Lines
 * are split on "\n" (a trailing "\r" is dropped), decoded as UTF-8 per utf8.ts (strict by
 * default: an error naming file and line), a leading byte-order mark is dropped. Non-regular files
 * (FIFOs, devices) are refused before opening (regular-file.ts).
 *
 * The limit: `maxLineBytes`, else $MOE_TUNE_MAX_LINE_BYTES, else 64 MiB (DEFAULT_MAX_LINE_BYTES).
 */
import * as fs from 'node:fs';
import { requireRegularFile } from './regular-file.js';
import { decodeUtf8, type EncodingErrors } from './utf8.js';

export const DEFAULT_MAX_LINE_BYTES = 64 * 1024 * 1024;
const CHUNK = 1 << 20;

export interface ReadLinesOptions {
  /** Longest accepted line in bytes (without its line break). */
  maxLineBytes?: number;
  encodingErrors?: EncodingErrors;
  /** What the file is, for "not found" errors (default 'data file'). */
  what?: string;
}

export interface TextLine {
  /** 1-based line number. */
  line: number;
  text: string;
  /** Whether the line ended with "\n" (false only for a last line without one). */
  terminated: boolean;
}

/** The line-length limit in effect (option, then $MOE_TUNE_MAX_LINE_BYTES, then 64 MiB). */
export function maxLineBytesOf(given?: number): number {
  if (given !== undefined) return given;
  const env = process.env['MOE_TUNE_MAX_LINE_BYTES'];
  if (env !== undefined && env !== '') {
    const n = Number(env);
    if (!Number.isInteger(n) || n < 1) throw new Error(`MOE_TUNE_MAX_LINE_BYTES must be a positive integer (bytes), got ${JSON.stringify(env)}`);
    return n;
  }
  return DEFAULT_MAX_LINE_BYTES;
}

function mib(n: number): string {
  return n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(n % (1 << 20) === 0 ? 0 : 1)} MiB` : `${n} bytes`;
}

/** Yields the lines of `file` (see the file comment). */
export function* readLines(file: string, opts: ReadLinesOptions = {}): Generator<TextLine> {
  const limit = maxLineBytesOf(opts.maxLineBytes);
  requireRegularFile(file, opts.what ?? 'data file');
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (err) {
    throw new Error(`${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  const chunk = Buffer.allocUnsafe(CHUNK);
  let parts: Buffer[] = [];
  let partBytes = 0;
  let lineNo = 1;
  const tooLong = (): Error => new Error(`${file}:${lineNo}: line longer than ${mib(limit)} (the limit for one line; `
    + 'split the record, or raise it with MOE_TUNE_MAX_LINE_BYTES)');
  const finish = (tail: Buffer, terminated: boolean): TextLine => {
    let bytes = parts.length === 0 ? tail : Buffer.concat([...parts, tail]);
    parts = [];
    partBytes = 0;
    if (bytes.length > 0 && bytes[bytes.length - 1] === 0x0d) bytes = bytes.subarray(0, bytes.length - 1);
    if (bytes.length > limit) throw tooLong();
    let text = decodeUtf8(bytes, file, { firstLine: lineNo, encodingErrors: opts.encodingErrors });
    if (lineNo === 1 && text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    return { line: lineNo++, text, terminated };
  };
  try {
    for (;;) {
      let n: number;
      try {
        n = fs.readSync(fd, chunk, 0, CHUNK, null);
      } catch (err) {
        throw new Error(`${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
      }
      if (n === 0) break;
      let start = 0;
      while (start < n) {
        const nl = chunk.indexOf(0x0a, start);
        const end = nl === -1 || nl >= n ? n : nl;
        // "\r\n": the "\r" is not counted against the limit
        const add = end - start;
        if (partBytes + add > limit + 1) throw tooLong();
        if (nl === -1 || nl >= n) {
          parts.push(Buffer.from(chunk.subarray(start, n)));
          partBytes += add;
          break;
        }
        yield finish(Buffer.from(chunk.subarray(start, end)), true);
        start = nl + 1;
      }
    }
    if (partBytes > 0) yield finish(Buffer.alloc(0), false);
  } finally {
    fs.closeSync(fd);
  }
}
