/**
 * The GPT-2 byte-level alphabet: each of the 256 byte values maps to one printable Unicode
 * character (printable Latin-1 bytes map to themselves; the others, space included, to U+0100
 * onwards, so a space byte is "Ġ" and a newline "Ċ"). A byte-level BPE vocabulary is made of
 * strings of these characters, so every UTF-8 byte string is representable and nothing is unknown.
 *
 * Also the GPT-2 pre-tokenisation regex, exactly as `@huggingface/tokenizers` applies it in its
 * ByteLevel pre-tokenizer (`use_regex: true`), so training sees the same words encoding does.
 */

/** byteToChar[b] is the alphabet character of byte b. */
export const byteToChar: readonly string[] = (() => {
  const printable = (b: number): boolean => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const out: string[] = new Array(256);
  let next = 256;
  for (let b = 0; b < 256; b++) out[b] = String.fromCharCode(printable(b) ? b : next++);
  return out;
})();

/** The inverse of byteToChar (character code -> byte). */
export const charToByte: ReadonlyMap<string, number> = new Map(byteToChar.map((c, b) => [c, b]));

/** GPT-2's pre-tokenisation pattern (global, unicode). Use `text.match(gpt2PreTokenizeRegex())`. */
export function gpt2PreTokenizeRegex(): RegExp {
  return /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;
}

const encoder = new TextEncoder();

/** The byte-level string of `text` (its UTF-8 bytes, each mapped through byteToChar). */
export function toByteLevel(text: string): string {
  const bytes = encoder.encode(text);
  let s = '';
  for (let i = 0; i < bytes.length; i++) s += byteToChar[bytes[i]!];
  return s;
}
