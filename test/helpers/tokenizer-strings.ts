/**
 * Deterministic, varied strings for checking a tokenizer against a reference encoder: words, numbers, whitespace
 * runs, punctuation, CJK, emoji, accented letters and rare code points (byte fallback / byte-level paths).
 */
/** mulberry32: a small deterministic PRNG for the string generator. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Hand-picked edge cases (empty, whitespace, scripts, emoji sequences, control and special-token-looking text). */
export const FIXED_STRINGS = [
  '', ' ', '  ', '   ', 'Hello', ' Hello', 'Hello world', 'Hello, world!', '\t', '\n', '\n\n', '\r\n',
  'a\tb\nc', 'tab\there', 'line one\nline two\n', '日本語のテキスト', '中文', '한국어', '😀', '👍🏽', '👨‍👩‍👧',
  'café', 'cafe\u0301', 'naïve façade', 'Ελληνικά', 'русский текст', 'العربية', 'עברית', 'हिन्दी',
  '0', '42', '1234567890', '12345678901234567890', '3.14159', '-17', '1,000,000', '2024-01-31',
  '   leading spaces', 'trailing spaces   ', 'multiple     inner     spaces', ' \t \n mixed whitespace',
  '\u00a0non-breaking\u00a0space', '\u2028', 'zero\u200bwidth', '𠀀𠀁', '\u{10fffd}', '\u{1f9ff}',
  '\u0001\u0002control', '\u007f', '~!@#$%^&*()_+-=[]{}|;:\'",.<>/?`', '...', '—–-', '«quotes»', '“curly”',
  'mixed English 和 中文 and emoji 🎉 together', 'x'.repeat(300), 'ab'.repeat(100), '▁', '▁▁x',
  '<s>', 'hi <s> there</s>', '</s>', 'a<unk>b', '<0x41>',
];

const POOLS: string[][] = [
  ['the', 'quick', 'brown', 'fox', 'Jumps', 'OVER', 'lazy', 'dog', 'tokenizer', 'Mixture', 'of', 'Experts', "don't", "it's"],
  ['0', '7', '42', '123', '2048', '65536', '3.5', '1e-9', '999999999999', '0x1F'],
  [' ', '  ', '    ', '\t', '\n', '\n\n', ' \n', '\t\t', '\r\n'],
  ['.', ',', '!', '?', ';', ':', '(', ')', '[', ']', '"', "'", '-', '--', '/', '\\', '@', '#', '%', '&', '*'],
  ['日', '本', '語', '中', '文', '字', '漢', 'か', 'な', 'カ', 'ナ', '한', '글'],
  ['😀', '🎉', '🚀', '❤️', '👍', '🤖', '🇫🇷', '✨'],
  ['é', 'è', 'ê', 'ñ', 'ü', 'ø', 'å', 'ß', 'ç', 'Ω', 'π', 'ж', 'я', 'ع', 'ש', 'ก'],
];

function randomRareChar(r: () => number): string {
  // Code points unlikely to be in a 32k vocabulary: exercise byte fallback.
  const ranges: [number, number][] = [[0x20000, 0x2a6df], [0x1f300, 0x1faff], [0x10000, 0x1007f], [0xa000, 0xa48c], [0x1d400, 0x1d7ff]];
  const [lo, hi] = ranges[Math.floor(r() * ranges.length)]!;
  return String.fromCodePoint(lo + Math.floor(r() * (hi - lo + 1)));
}

export function generateStrings(count: number, seed: number): string[] {
  const r = rng(seed);
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const parts = 1 + Math.floor(r() * 10);
    let s = '';
    for (let p = 0; p < parts; p++) {
      const kind = Math.floor(r() * (POOLS.length + 1));
      if (kind === POOLS.length) s += randomRareChar(r);
      else {
        const pool = POOLS[kind]!;
        s += pool[Math.floor(r() * pool.length)]!;
      }
    }
    out.push(s);
  }
  return out;
}
