/**
 * MoeTokenizer on a tiny hand-written Llama-style tokenizer.json: exact ids, explicit BOS/EOS
 * handling (config add_bos_token vs the post-processor template), decode, chat templates, and the
 * one-line errors of fromDir.
 */
import { readFileSync } from 'node:fs';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MoeTokenizer } from '../src/data/tokenizer.js';

const special = (id: number, content: string) => ({
  id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true,
});

/** SentencePiece-BPE in the Mistral layout: "▁" for spaces, a "<s> $A" post-processor. */
function tinyLlamaJson() {
  return {
    version: '1.0',
    added_tokens: [special(0, '<unk>'), special(1, '<s>'), special(2, '</s>')],
    normalizer: { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: '▁' }, { type: 'Replace', pattern: { String: ' ' }, content: '▁' }] },
    pre_tokenizer: null,
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '<s>', type_id: 1 } }, { Sequence: { id: 'B', type_id: 1 } }],
      special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
    },
    decoder: { type: 'Sequence', decoders: [{ type: 'Replace', pattern: { String: '▁' }, content: ' ' }, { type: 'ByteFallback' }, { type: 'Fuse' }, { type: 'Strip', content: ' ', start: 1, stop: 0 }] },
    model: {
      type: 'BPE', dropout: null, unk_token: '<unk>', continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: true, byte_fallback: false,
      vocab: { '<unk>': 0, '<s>': 1, '</s>': 2, '▁': 3, a: 4, b: 5, c: 6, ab: 7, '▁ab': 8, abc: 9, '▁abc': 10, '[': 11, ']': 12 },
      merges: ['a b', '▁ ab', 'ab c', '▁ab c'],
    },
  };
}

const MISTRAL_LIKE_TEMPLATE = "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token }}{% endif %}{% endfor %}";
const CHATML_TEMPLATE = "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'moe-tok-'));
  dirs.push(d);
  return d;
}
afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

describe('MoeTokenizer on a tiny hand-written tokenizer', () => {
  it('encodes with the BPE merges in rank order', () => {
    const tok = MoeTokenizer.fromJson(tinyLlamaJson(), { bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>' });
    // "abc ab" -> normalised "▁abc▁ab" -> ▁ a b c ▁ a b -> (a b) -> (▁ ab) -> (▁ab c) -> ▁abc ▁ab
    expect(tok.encode('abc ab', { addBos: false })).toEqual([10, 8]);
    expect(tok.encode('c', { addBos: false })).toEqual([3, 6]);
    expect(tok.encode('z', { addBos: false })).toEqual([3, 0]); // unknown, no byte fallback: <unk>
    expect(tok.vocabSize).toBe(13);
    expect([tok.bosId, tok.eosId, tok.unkId, tok.padId]).toEqual([1, 2, 0, null]);
  });

  it('adds BOS per config add_bos_token, else per the post-processor template', () => {
    const fromTemplate = MoeTokenizer.fromJson(tinyLlamaJson(), { bos_token: '<s>', eos_token: '</s>' });
    expect(fromTemplate.addBosDefault).toBe(true);
    expect(fromTemplate.addEosDefault).toBe(false);
    expect(fromTemplate.encode('abc ab')).toEqual([1, 10, 8]);

    // transformers' LlamaTokenizerFast honours add_bos_token=false even though the template has <s>;
    // the library's own encode(add_special_tokens) would still add it.
    const noBos = MoeTokenizer.fromJson(tinyLlamaJson(), { bos_token: '<s>', eos_token: '</s>', add_bos_token: false, add_eos_token: true });
    expect(noBos.addBosDefault).toBe(false);
    expect(noBos.encode('abc ab')).toEqual([10, 8, 2]);
    expect(noBos.encode('abc ab', { addBos: true, addEos: false })).toEqual([1, 10, 8]);

    // No config at all: BOS/EOS inferred from the template and the usual names.
    const bare = MoeTokenizer.fromJson(tinyLlamaJson());
    expect([bare.bosId, bare.eosId]).toEqual([1, 2]);
    expect(bare.encode('ab')).toEqual([1, 8]);

    // Special-token text is parsed as the token.
    expect(noBos.encode('ab</s>', { addBos: false, addEos: false })).toEqual([8, 2]);
  });

  it('decodes, with and without special tokens', () => {
    const tok = MoeTokenizer.fromJson(tinyLlamaJson(), { bos_token: '<s>', eos_token: '</s>' });
    expect(tok.decode([10, 8])).toBe('abc ab');
    expect(tok.decode([1, 10, 8, 2], { skipSpecial: true })).toBe('abc ab');
    expect(tok.decode([1, 10, 8, 2])).toBe('<s> abc ab</s>');
    expect(tok.decode([])).toBe('');
    expect(tok.decode([1, 2], { skipSpecial: true })).toBe('');
  });

  it('renders chat templates with bos/eos, generation prompt and raise_exception', () => {
    const tok = MoeTokenizer.fromJson(tinyLlamaJson(), { bos_token: '<s>', eos_token: '</s>', chat_template: MISTRAL_LIKE_TEMPLATE });
    const msgs = [
      { role: 'user', content: 'hi' }, { role: 'assistant', content: 'ab' },
      { role: 'user', content: 'c?' }, { role: 'assistant', content: 'abc' },
    ];
    expect(tok.applyChatTemplate(msgs)).toBe('<s>[INST] hi [/INST]ab</s>[INST] c? [/INST]abc</s>');
    expect(() => tok.applyChatTemplate([{ role: 'assistant', content: 'x' }]))
      .toThrow('chat template error: Conversation roles must alternate user/assistant/user/assistant/...');

    const chatml = MoeTokenizer.fromJson(tinyLlamaJson(), { chat_template: [{ name: 'default', template: CHATML_TEMPLATE }, { name: 'tool_use', template: 'x' }] });
    expect(chatml.applyChatTemplate([{ role: 'user', content: 'hi' }], { addGenerationPrompt: true }))
      .toBe('<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n');
    expect(chatml.applyChatTemplate([{ role: 'user', content: 'hi' }])).toBe('<|im_start|>user\nhi<|im_end|>\n');

    const none = MoeTokenizer.fromJson(tinyLlamaJson(), {}, { source: 'my-tok' });
    expect(() => none.applyChatTemplate(msgs)).toThrow('my-tok: the tokenizer has no chat_template');
  });

  it('loads from a directory (chat_template.jinja wins), saves and reloads identically', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tinyLlamaJson()));
    writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ bos_token: { content: '<s>', special: true }, eos_token: '</s>', chat_template: 'config' }));
    writeFileSync(join(dir, 'chat_template.jinja'), CHATML_TEMPLATE);
    const tok = MoeTokenizer.fromDir(dir);
    expect(tok.chatTemplate).toBe(CHATML_TEMPLATE);
    expect(tok.bosId).toBe(1);
    const out = join(dir, 'saved');
    tok.save(out);
    const again = MoeTokenizer.fromDir(out);
    expect(again.encode('abc ab c')).toEqual(tok.encode('abc ab c'));
    expect(again.chatTemplate).toBe(CHATML_TEMPLATE); // the template in use is saved, so the copy renders the same
    expect(JSON.parse(readFileSync(join(out, 'special_tokens_map.json'), 'utf8'))).toEqual({ bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>' });
    expect(again.hash).not.toBe('');
    expect(MoeTokenizer.fromJson(tinyLlamaJson(), {}).hash).toBe(MoeTokenizer.fromJson(tinyLlamaJson(), {}).hash);
    expect(MoeTokenizer.fromJson(tinyLlamaJson(), {}).hash).not.toBe(MoeTokenizer.fromJson(tinyLlamaJson(), { add_bos_token: false }).hash);
  });

  it('gives one-line errors naming the file', () => {
    const dir = tempDir();
    expect(() => MoeTokenizer.fromDir(dir)).toThrow(`${join(dir, 'tokenizer.json')}: not found (a tokenizer directory needs tokenizer.json)`);
    writeFileSync(join(dir, 'tokenizer.json'), '{"model": ');
    expect(() => MoeTokenizer.fromDir(dir)).toThrow(new RegExp(`^${join(dir, 'tokenizer.json')}: invalid JSON \\(`));
    writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tinyLlamaJson()));
    writeFileSync(join(dir, 'tokenizer_config.json'), '[1, 2');
    expect(() => MoeTokenizer.fromDir(dir)).toThrow(new RegExp(`^${join(dir, 'tokenizer_config.json')}: invalid JSON \\(`));
    writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ bos_token: '<bos>' }));
    expect(() => MoeTokenizer.fromDir(dir)).toThrow(`${dir}: tokenizer_config.json bos_token "<bos>" is not in the vocabulary`);
    const sub = join(dir, 'nomodel');
    mkdirSync(sub);
    writeFileSync(join(sub, 'tokenizer.json'), JSON.stringify({ version: '1.0' }));
    expect(() => MoeTokenizer.fromDir(sub)).toThrow(`${sub}: tokenizer.json has no "model" object`);
    for (const fn of [() => MoeTokenizer.fromDir(dir), () => MoeTokenizer.fromDir(sub)]) {
      try { fn(); } catch (e) { expect((e as Error).message).not.toContain('\n'); }
    }
  });
});
