/**
 * Our byte-level BPE trainer: merges hand-worked on tiny corpora, the incremental pair counting
 * checked against a naive recount-everything trainer, exact round trips through
 * @huggingface/tokenizers on arbitrary Unicode, determinism, and speed on the Brown corpus.
 */
import { describe, expect, it } from 'vitest';
import { Tokenizer } from '@huggingface/tokenizers';
import { byteLevelTokenizerConfig, trainByteLevelBpe } from '../src/data/bpe-trainer.js';
import { byteToChar, gpt2PreTokenizeRegex } from '../src/data/byte-level-alphabet.js';
import { loadBrownCorpus } from '../src/data/brown-corpus.js';
import { MoeTokenizer } from '../src/data/tokenizer.js';

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

/** Reference trainer: recounts every pair of every word at every step (slow, obviously right). */
function naiveMerges(texts: string[], nMerges: number, minFrequency: number, nSpecial: number): string[] {
  const counts = new Map<string, number>();
  for (const t of texts) for (const w of t.match(gpt2PreTokenizeRegex()) ?? []) counts.set(w, (counts.get(w) ?? 0) + 1);
  const vocab = [...Array(nSpecial).fill('<special>'), ...byteToChar];
  const ids = new Map<string, number>();
  vocab.forEach((v, i) => { if (i >= nSpecial) ids.set(v, i); });
  const words = [...counts].map(([w, f]) => ({ s: [...new TextEncoder().encode(w)].map((b) => nSpecial + b), f }));
  const merges: string[] = [];
  for (let m = 0; m < nMerges; m++) {
    const pairs = new Map<string, { a: number; b: number; c: number }>();
    for (const { s, f } of words) {
      for (let i = 0; i + 1 < s.length; i++) {
        const k = `${s[i]},${s[i + 1]}`;
        const p = pairs.get(k) ?? { a: s[i]!, b: s[i + 1]!, c: 0 };
        p.c += f;
        pairs.set(k, p);
      }
    }
    let best: { a: number; b: number; c: number } | null = null;
    for (const p of pairs.values()) {
      if (!best || p.c > best.c || (p.c === best.c && (p.a < best.a || (p.a === best.a && p.b < best.b)))) best = p;
    }
    if (!best || best.c < minFrequency) break;
    const str = vocab[best.a]! + vocab[best.b]!;
    let c = ids.get(str);
    if (c === undefined) { c = vocab.length; vocab.push(str); ids.set(str, c); }
    merges.push(`${vocab[best.a]} ${vocab[best.b]}`);
    for (const w of words) {
      const out: number[] = [];
      for (let i = 0; i < w.s.length; i++) {
        if (i + 1 < w.s.length && w.s[i] === best.a && w.s[i + 1] === best.b) { out.push(c); i++; } else out.push(w.s[i]!);
      }
      w.s = out;
    }
  }
  return merges;
}

describe('trainByteLevelBpe', () => {
  it('learns the hand-worked merges of a tiny corpus', () => {
    // Pre-tokens: "ab" x1, " ab" x2, " abc" x1 -> byte-level ab, Ġab, Ġab, Ġabc.
    // Pair counts: (a,b)=4, (Ġ,a)=3, (b,c)=1 -> merge "a b".
    // Then (Ġ,ab)=3, (ab,c)=1 -> merge "Ġ ab". Then (Ġab,c)=1 < minFrequency 2: stop.
    const json = trainByteLevelBpe(['ab ab ab abc'], { vocabSize: 1000 });
    expect(json.model.merges).toEqual(['a b', 'Ġ ab']);
    expect(json.model.vocab['ab']).toBe(3 + 256);
    expect(json.model.vocab['Ġab']).toBe(3 + 256 + 1);
    expect(Object.keys(json.model.vocab)).toHaveLength(3 + 256 + 2);
    // minFrequency 1 takes the last pair too; vocabSize caps the count.
    expect(trainByteLevelBpe(['ab ab ab abc'], { vocabSize: 1000, minFrequency: 1 }).model.merges).toEqual(['a b', 'Ġ ab', 'Ġab c']);
    expect(trainByteLevelBpe(['ab ab ab abc'], { vocabSize: 3 + 256 + 1 }).model.merges).toEqual(['a b']);
  });

  it('breaks ties by the smaller left id, then right id', () => {
    // "ab cd" -> "ab", " cd": (a,b), (Ġ,c), (c,d) all count 1. Ids: Ġ = 3+0x20 = 35, a = 100, c = 102.
    // (Ġ,c) first (35); then (a,b) (100) beats (Ġc,d) (259); then (Ġc,d).
    const json = trainByteLevelBpe(['ab cd'], { vocabSize: 1000, minFrequency: 1 });
    expect(json.model.merges).toEqual(['Ġ c', 'a b', 'Ġc d']);
    expect(json.model.vocab['Ġc']).toBe(259);
    expect(json.model.vocab['ab']).toBe(260);
  });

  it('merges overlapping pairs left to right', () => {
    // "aaaa": (a,a)=3 -> aa aa; (aa,aa)=1 -> aaaa. "aaa" then encodes as aa + a.
    const json = trainByteLevelBpe(['aaaa'], { vocabSize: 1000, minFrequency: 1 });
    expect(json.model.merges).toEqual(['a a', 'aa aa']);
    const tok = MoeTokenizer.fromJson(json, byteLevelTokenizerConfig());
    expect(tok.encode('aaaa').map((i) => tok.idToToken(i))).toEqual(['aaaa']);
    expect(tok.encode('aaa').map((i) => tok.idToToken(i))).toEqual(['aa', 'a']);
  });

  it('agrees with a naive recount-everything trainer (incremental counts are right)', () => {
    const r = rng(7);
    const alphabet = ['a', 'b', 'c', 'ab', 'ba', ' ', ' ', 'é', '日', '1', '.'];
    const texts: string[] = [];
    for (let i = 0; i < 40; i++) {
      let s = '';
      const n = 20 + Math.floor(r() * 80);
      for (let j = 0; j < n; j++) s += alphabet[Math.floor(r() * alphabet.length)]!;
      texts.push(s);
    }
    for (const minFrequency of [1, 2, 5]) {
      const json = trainByteLevelBpe(texts, { vocabSize: 3 + 256 + 120, minFrequency });
      expect(json.model.merges.length).toBeGreaterThan(20);
      expect(json.model.merges).toEqual(naiveMerges(texts, json.model.merges.length + 1, minFrequency, 3).slice(0, json.model.merges.length));
      // Stopping point agrees too.
      const more = naiveMerges(texts, 1000, minFrequency, 3);
      expect(json.model.merges).toEqual(more.slice(0, json.model.merges.length));
    }
  });

  it('round-trips arbitrary Unicode exactly through @huggingface/tokenizers', () => {
    const json = trainByteLevelBpe(['hello world, hello tokens! 12345 café 日本語', 'the the the quick brown fox'], { vocabSize: 400, minFrequency: 1, specialTokens: ['<unk>', '<s>', '</s>', '<pad>'] });
    const lib = new Tokenizer(json, byteLevelTokenizerConfig(['<unk>', '<s>', '</s>', '<pad>']));
    const tok = MoeTokenizer.fromJson(json, byteLevelTokenizerConfig(['<unk>', '<s>', '</s>', '<pad>']));
    expect([tok.unkId, tok.bosId, tok.eosId, tok.padId]).toEqual([0, 1, 2, 3]);
    const r = rng(99);
    const ranges: [number, number][] = [[0x20, 0x7e], [0x0, 0x1f], [0xa0, 0x24f], [0x370, 0x52f], [0x4e00, 0x9fff], [0x1f300, 0x1faff], [0x10000, 0x10ffff], [0xe000, 0xf8ff]];
    const strings = ['', ' ', '\n\n', '  leading', 'trailing  ', 'hello world', '\u0000', '\u{10ffff}'];
    for (let i = 0; i < 300; i++) {
      let s = '';
      const n = 1 + Math.floor(r() * 30);
      for (let j = 0; j < n; j++) {
        const [lo, hi] = ranges[Math.floor(r() * ranges.length)]!;
        let cp = lo + Math.floor(r() * (hi - lo + 1));
        if (cp >= 0xd800 && cp <= 0xdfff) cp = 0x41; // no lone surrogates
        s += String.fromCodePoint(cp);
      }
      strings.push(s);
    }
    for (const s of strings) {
      const ids = tok.encode(s);
      expect(ids).toEqual(s.length ? lib.encode(s).ids : []);
      expect(ids.includes(0), JSON.stringify(s)).toBe(false); // never <unk>
      expect(tok.decode(ids), JSON.stringify(s)).toBe(s);
    }
    // Known segmentation of training text, and special tokens.
    expect(tok.encode('hello world').map((i) => tok.idToToken(i))).toEqual(['hello', 'Ġworld']);
    expect(tok.encode('hello</s><s>', { addBos: true })).toEqual([1, tok.tokenToId('hello')!, 2, 1]);
  });

  it('is deterministic: same input, same tokenizer.json bytes', () => {
    const texts = ['one two three two one', 'three three two', 'ünïcödé 文字 文字 😀😀'];
    const a = JSON.stringify(trainByteLevelBpe(texts, { vocabSize: 300, minFrequency: 1 }));
    const b = JSON.stringify(trainByteLevelBpe([...texts], { vocabSize: 300, minFrequency: 1 }));
    expect(a).toBe(b);
    expect((JSON.parse(a) as { model: { merges: string[] } }).model.merges.length).toBeGreaterThan(20);
  });

  it('rejects bad options with one-line errors', () => {
    expect(() => trainByteLevelBpe(['x'], { vocabSize: 100 })).toThrow('trainByteLevelBpe: vocabSize must be an integer >= 259');
    expect(() => trainByteLevelBpe(['x'], { vocabSize: 300, specialTokens: ['<s>', '<s>'] })).toThrow('special token "<s>" is listed twice');
    expect(() => trainByteLevelBpe(['x'], { vocabSize: 300, minFrequency: 0 })).toThrow('minFrequency must be an integer >= 1');
  });

  it('trains on the Brown corpus to 8000 tokens in well under a minute', () => {
    const { train, validation } = loadBrownCorpus();
    const t0 = performance.now();
    const json = trainByteLevelBpe(train.map((d) => d.text), { vocabSize: 8000 });
    const seconds = (performance.now() - t0) / 1000;
    expect(seconds).toBeLessThan(30);
    expect(Object.keys(json.model.vocab)).toHaveLength(8000);
    expect(json.model.merges.slice(0, 4)).toEqual(['Ġ t', 'h e', 'Ġ a', 'i n']);
    const tok = MoeTokenizer.fromJson(json, byteLevelTokenizerConfig());
    const text = validation[0]!.text;
    const ids = tok.encode(text);
    expect(tok.decode(ids)).toBe(text);
    const bytesPerToken = Buffer.byteLength(text) / ids.length;
    expect(bytesPerToken).toBeGreaterThan(3.5); // English text: ~4 bytes per token at 8k
    console.log(`brown: trained 8000-token BPE in ${seconds.toFixed(2)} s; validation doc ${validation[0]!.id}: ${bytesPerToken.toFixed(2)} bytes/token`);
  });
});
