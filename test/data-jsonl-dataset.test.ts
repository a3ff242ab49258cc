/**
 * JSONL and plain-text datasets: record kinds, exact loss masks for prompt/completion and chat
 * data, corrupt lines reported as FILE:LINE (or skipped and counted), and text splitting.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { byteLevelTokenizerConfig, trainByteLevelBpe } from '../src/data/bpe-trainer.js';
import { encodeChat, encodePromptCompletion } from '../src/data/instruction-masking.js';
import { readJsonlDataset } from '../src/data/jsonl-dataset.js';
import { readTextDataset, readTextDocuments } from '../src/data/text-dataset.js';
import { MoeTokenizer } from '../src/data/tokenizer.js';

const MISTRAL_LIKE_TEMPLATE = "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token }}{% endif %}{% endfor %}";

/**
 * A byte-level tokenizer with no merges: one token per byte, id = 3 + byte; <s> = 0, </s> = 1,
 * <pad> = 2. Makes hand-computed masks exact.
 */
function byteTokenizer(config: Record<string, unknown> = {}): MoeTokenizer {
  const json = trainByteLevelBpe([], { vocabSize: 259 });
  return MoeTokenizer.fromJson(json, byteLevelTokenizerConfig(undefined, { chat_template: MISTRAL_LIKE_TEMPLATE, ...config }));
}
const bytes = (s: string) => [...Buffer.from(s, 'utf8')].map((b) => 3 + b);

/** ids and mask from [text-or-special-id, isTarget] segments. */
function expected(segments: [string | number, 0 | 1][]): { ids: number[]; mask: number[] } {
  const ids: number[] = [], mask: number[] = [];
  for (const [seg, m] of segments) {
    const part = typeof seg === 'number' ? [seg] : bytes(seg);
    ids.push(...part);
    mask.push(...part.map(() => m));
  }
  return { ids, mask };
}

const special = (id: number, content: string) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
/** Llama-style tiny tokenizer: "abc ab" -> ▁abc(10) ▁ab(8). */
function tinyLlama(): MoeTokenizer {
  return MoeTokenizer.fromJson({
    added_tokens: [special(0, '<unk>'), special(1, '<s>'), special(2, '</s>')],
    normalizer: { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: '▁' }, { type: 'Replace', pattern: { String: ' ' }, content: '▁' }] },
    pre_tokenizer: null,
    post_processor: null,
    decoder: { type: 'Sequence', decoders: [{ type: 'Replace', pattern: { String: '▁' }, content: ' ' }, { type: 'Fuse' }, { type: 'Strip', content: ' ', start: 1, stop: 0 }] },
    model: {
      type: 'BPE', unk_token: '<unk>', byte_fallback: false,
      vocab: { '<unk>': 0, '<s>': 1, '</s>': 2, '▁': 3, a: 4, b: 5, c: 6, ab: 7, '▁ab': 8, abc: 9, '▁abc': 10 },
      merges: ['a b', '▁ ab', 'ab c', '▁ab c'],
    },
  }, { bos_token: '<s>', eos_token: '</s>', add_bos_token: true });
}

const dirs: string[] = [];
function tempFile(name: string, content: string): string {
  const d = mkdtempSync(join(tmpdir(), 'moe-jsonl-'));
  dirs.push(d);
  const p = join(d, name);
  writeFileSync(p, content);
  return p;
}
afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

describe('instruction masking', () => {
  it('masks exactly the prompt tokens of prompt/completion', () => {
    const tok = byteTokenizer();
    const doc = encodePromptCompletion(tok, 'Q: 1+1=', ' 2', { addBos: true });
    const e = expected([[0, 0], ['Q: 1+1=', 0], [' 2', 1]]);
    expect([...doc.ids]).toEqual(e.ids);
    expect([...doc.mask]).toEqual(e.mask);
    expect([...doc.mask]).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 1, 1]);
  });

  it('counts a token that straddles the prompt end as completion', () => {
    const tok = tinyLlama();
    // "abc ab": prompt "abc" is token ▁abc, completion " ab" is ▁ab.
    let doc = encodePromptCompletion(tok, 'abc', ' ab');
    expect([...doc.ids]).toEqual([1, 10, 8]);
    expect([...doc.mask]).toEqual([0, 0, 1]);
    // "abc": prompt "a" + completion "bc" merge into one token ▁abc: it is a target.
    doc = encodePromptCompletion(tok, 'a', 'bc', { addBos: false });
    expect([...doc.ids]).toEqual([10]);
    expect([...doc.mask]).toEqual([1]);
  });

  it('keeps exactly the assistant turns (and their EOS) of a chat', () => {
    const tok = byteTokenizer();
    const doc = encodeChat(tok, [
      { role: 'user', content: 'hi' }, { role: 'assistant', content: 'ab' },
      { role: 'user', content: 'c?' }, { role: 'assistant', content: 'abc' },
    ]);
    const e = expected([[0, 0], ['[INST] hi [/INST]', 0], ['ab', 1], [1, 1], ['[INST] c? [/INST]', 0], ['abc', 1], [1, 1]]);
    expect([...doc.ids]).toEqual(e.ids);
    expect([...doc.mask]).toEqual(e.mask);
  });
});

describe('readJsonlDataset', () => {
  const tok = byteTokenizer();

  it('reads every record kind', async () => {
    const path = tempFile('ok.jsonl', [
      JSON.stringify({ text: 'ab' }),
      '',
      JSON.stringify({ prompt: 'Q', completion: 'A' }),
      '   ',
      JSON.stringify({ messages: [{ role: 'user', content: 'x' }, { role: 'assistant', content: 'y' }] }),
      JSON.stringify({ input_ids: [5, 6, 7] }),
    ].join('\n') + '\n');
    const r = await readJsonlDataset(path, tok, { addBos: true });
    expect(r.kinds).toEqual({ text: 1, prompt_completion: 1, messages: 1, input_ids: 1 });
    expect(r.skipped).toBe(0);
    const [text, pc, chat, ids] = r.documents;
    expect([...text!.ids]).toEqual([0, ...bytes('ab')]);
    expect([...text!.mask]).toEqual([0, 1, 1]);
    expect([...pc!.mask]).toEqual([0, 0, 1]);
    expect([...chat!.ids]).toEqual(expected([[0, 0], ['[INST] x [/INST]y', 0], [1, 1]]).ids);
    expect([...chat!.mask]).toEqual(expected([[0, 0], ['[INST] x [/INST]', 0], ['y', 1], [1, 1]]).mask);
    expect([...ids!.ids]).toEqual([5, 6, 7]);
    expect([...ids!.mask]).toEqual([1, 1, 1]);
  });

  const bad = [
    JSON.stringify({ text: 'fine' }),
    JSON.stringify({ text: 'also fine' }),
    '{"text": "unterminated',
    '',
    JSON.stringify({ text: 42 }),
    JSON.stringify({ input_ids: [1, 2, 999] }),
    JSON.stringify([1, 2]),
    JSON.stringify({ prompt: 'only a prompt' }),
    JSON.stringify({ messages: [{ role: 'assistant', content: 'x' }] }),
    JSON.stringify({ other: 1 }),
    JSON.stringify({ text: 'last' }),
  ].join('\n');

  it('names the file and line of a corrupt line', async () => {
    const path = tempFile('bad.jsonl', bad);
    await expect(readJsonlDataset(path, tok)).rejects.toThrow(new RegExp(`^${path}:3: invalid JSON \\(`));
    const lines = bad.split('\n');
    const cases: [number, string][] = [
      [5, `${path}:5: "text" must be a string, got number 42`],
      [6, `${path}:6: "input_ids"[2] = 999 is not a token id (expected an integer in [0, 259))`],
      [7, `${path}:7: expected a JSON object with "text", "prompt"/"completion", "messages" or "input_ids", got an array`],
      [8, `${path}:8: "completion" is missing (an instruction line needs "prompt" and "completion" strings)`],
      [9, `${path}:9: chat template error: Conversation roles must alternate user/assistant/user/assistant/...`],
      [10, `${path}:10: expected one of "text", "prompt"/"completion", "messages" or "input_ids" (found keys: other)`],
    ];
    for (const [line, message] of cases) {
      // Keep the lines before `line` valid (blank), so the first error is the one under test.
      const content = lines.map((l, i) => (i + 1 < line ? '' : l)).join('\n');
      const p = tempFile(`bad${line}.jsonl`, content);
      await expect(readJsonlDataset(p, tok)).rejects.toThrow(message.replace(path, p));
    }
  });

  it('skips and counts bad lines with skipBadLines', async () => {
    const path = tempFile('skip.jsonl', bad);
    const r = await readJsonlDataset(path, tok, { skipBadLines: true, addBos: false });
    expect(r.skipped).toBe(7);
    expect(r.documents).toHaveLength(3);
    expect([...r.documents[2]!.ids]).toEqual(bytes('last'));
    expect(r.skippedExamples[0]).toMatch(new RegExp(`^${path}:3: invalid JSON`));
    expect(r.skippedExamples.map((m) => Number(m.slice(path.length + 1).split(':')[0]))).toEqual([3, 5, 6, 7, 8, 9, 10]);
  });

  it('fails on messages without a chat template even with skipBadLines, and on a missing file', async () => {
    const noTemplate = MoeTokenizer.fromJson(trainByteLevelBpe([], { vocabSize: 259 }), byteLevelTokenizerConfig(), { source: 'tokdir' });
    const path = tempFile('chat.jsonl', `${JSON.stringify({ text: 'a' })}\n${JSON.stringify({ messages: [{ role: 'user', content: 'x' }] })}\n`);
    await expect(readJsonlDataset(path, noTemplate, { skipBadLines: true }))
      .rejects.toThrow(`${path}:2: chat data needs a chat template, and the tokenizer (tokdir) has none (pass --chat-template`);
    await expect(readJsonlDataset(join(tmpdir(), 'no-such-file.jsonl'), tok)).rejects.toThrow(`${join(tmpdir(), 'no-such-file.jsonl')}: data file not found`);
  });
});

describe('plain text datasets', () => {
  it('splits by file, paragraph or line and masks only BOS', () => {
    const tok = byteTokenizer();
    const path = tempFile('notes.txt', '\ufeffab\ncd\n\n  \nef\n');
    expect(readTextDocuments([path], 'file')).toEqual([{ id: path, text: 'ab\ncd\n\n  \nef\n' }]);
    expect(readTextDocuments([path], 'paragraph')).toEqual([{ id: `${path}#1`, text: 'ab\ncd' }, { id: `${path}#2`, text: 'ef' }]);
    expect(readTextDocuments([path], 'line').map((d) => d.text)).toEqual(['ab', 'cd', 'ef']);
    const docs = readTextDataset([path], tok, { split: 'line', addBos: true });
    expect(docs.map((d) => [...d.ids])).toEqual([[0, ...bytes('ab')], [0, ...bytes('cd')], [0, ...bytes('ef')]]);
    expect(docs.map((d) => [...d.mask])).toEqual([[0, 1, 1], [0, 1, 1], [0, 1, 1]]);
  });

  it('gives one-line errors for unreadable and non-UTF-8 files', () => {
    const tok = byteTokenizer();
    const latin1 = tempFile('latin1.txt', '');
    writeFileSync(latin1, Buffer.from([0x63, 0x61, 0x66, 0xe9]));
    expect(() => readTextDataset([latin1], tok)).toThrow(`${latin1}:1: not valid UTF-8 (byte 0xE9 at byte 3 of the line)`);
    expect(() => readTextDataset([join(tmpdir(), 'nope.txt')], tok)).toThrow(`${join(tmpdir(), 'nope.txt')}: text file not found`);
  });
});
