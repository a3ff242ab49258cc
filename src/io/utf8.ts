/**
 * Decoding text data as UTF-8, strictly by default: a byte sequence that is not UTF-8 (a Latin-1
 * file, a truncated multi-byte character) is an error naming the file, the line and the byte,
 * never a silent U+FFFD. `encodingErrors: 'replace'` (a recipe's data.encoding_errors) opts into
 * replacement, as Python's `errors="replace"` does.
 */

export const ENCODING_ERRORS = ['strict', 'replace'] as const;
export type EncodingErrors = typeof ENCODING_ERRORS[number];

const strictDecoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const replacingDecoder = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });

/**
 * Offset of the first byte that does not start or continue a well-formed UTF-8 sequence
 * (Unicode 15, table 3-7: no overlongs, no surrogates, nothing above U+10FFFF), or -1.
 */
export function firstInvalidUtf8(b: Uint8Array): number {
  let i = 0;
  const n = b.length;
  while (i < n) {
    const c = b[i]!;
    if (c < 0x80) { i++; continue; }
    let need: number;
    let lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) need = 1;
    else if (c >= 0xe0 && c <= 0xef) { need = 2; if (c === 0xe0) lo = 0xa0; else if (c === 0xed) hi = 0x9f; }
    else if (c >= 0xf0 && c <= 0xf4) { need = 3; if (c === 0xf0) lo = 0x90; else if (c === 0xf4) hi = 0x8f; }
    else return i;
    for (let k = 1; k <= need; k++) {
      const x = b[i + k];
      if (x === undefined) return i;
      if (k === 1 ? x < lo || x > hi : x < 0x80 || x > 0xbf) return i;
    }
    i += need + 1;
  }
  return -1;
}

/** 1-based line of a byte offset (newlines before it + 1). */
function lineOfOffset(b: Uint8Array, offset: number): { line: number; column: number } {
  let line = 1, start = 0;
  for (let i = 0; i < offset; i++) if (b[i] === 0x0a) { line++; start = i + 1; }
  return { line, column: offset - start };
}

/**
 * Decodes `bytes` (a line or a whole file starting at line `firstLine`) as UTF-8. With 'strict', a
 * bad byte throws "FILE:LINE: not valid UTF-8 (byte 0xE9 at byte N of the line) ...".
 */
export function decodeUtf8(bytes: Uint8Array, file: string, opts: { firstLine?: number; encodingErrors?: EncodingErrors } = {}): string {
  if ((opts.encodingErrors ?? 'strict') === 'replace') return replacingDecoder.decode(bytes);
  try {
    return strictDecoder.decode(bytes);
  } catch {
    const at = firstInvalidUtf8(bytes);
    const { line, column } = lineOfOffset(bytes, Math.max(at, 0));
    const byte = at >= 0 ? `0x${bytes[at]!.toString(16).toUpperCase().padStart(2, '0')}` : 'a truncated sequence';
    throw new Error(`${file}:${line + (opts.firstLine ?? 1) - 1}: not valid UTF-8 (byte ${byte} at byte ${column} of the line); `
      + 're-encode the file as UTF-8 (e.g. iconv -f latin1 -t utf-8), or set data.encoding_errors: replace');
  }
}
