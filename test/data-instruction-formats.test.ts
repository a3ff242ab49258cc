/**
 * Issue 18, item 3: instruction data as people have it. Alpaca and ShareGPT lines, column mappings,
 * --chat-template for a model directory without one, unknown chat roles as FILE:LINE errors, eval
 * scoring the prompt / completion lines train accepts (only the completion), and PIQA's goal / sol1
 * / sol2 / label for eval --task mc. Before the change an Alpaca / ShareGPT / PIQA line was
 * "expected one of ..." / "no context field", a "human" role was rendered as is, and eval refused
 * prompt / completion lines.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { byteLevelTokenizerConfig, trainByteLevelBpe } from '../src/data/bpe-trainer.js';
import { NAMED_CHAT_TEMPLATES, resolveChatTemplate } from '../src/data/chat-templates.js';
import { readJsonlDataset } from '../src/data/jsonl-dataset.js';
import { ALPACA_PROMPT_NO_INPUT } from '../src/data/record-format.js';
import { MoeTokenizer } from '../src/data/tokenizer.js';
import { loadModel } from '../src/models/load.js';
import { noGrad, ops, Tensor, withScope } from '../src/tensor/index.js';
import { expectOneErrorLine, runCli, runCliJson } from './helpers/cli.js';
import { tinyMixtralConfig, writeTinyCheckpoint } from './helpers/tiny-model.js';
import { writeTinyTokenizer } from './helpers/tiny-tokenizer.js';
import { makeTmpDir } from './helpers/tmpdir.js';

/** One token per byte (id = 3 + byte), <s> 0, </s> 1: masks are exact by hand. */
function byteTok(chatTemplate?: string): MoeTokenizer {
  return MoeTokenizer.fromJson(trainByteLevelBpe([], { vocabSize: 259 }), byteLevelTokenizerConfig(undefined, chatTemplate ? { chat_template: chatTemplate } : {}), { source: 'bytes' });
}
const bytes = (s: string) => [...Buffer.from(s, 'utf8')].map((b) => 3 + b);

function jsonl(dir: string, name: string, lines: unknown[]): string {
  const f = path.join(dir, name);
  fs.writeFileSync(f, `${lines.map((l) => JSON.stringify(l)).join('\n')}\n`);
  return f;
}

describe('record formats for train', () => {
  it('reads Alpaca as the Stanford prompt + output, training only on the output', async () => {
    const dir = makeTmpDir('alpaca');
    const f = jsonl(dir, 'alpaca.jsonl', [{ instruction: 'Add 2 and 3.', input: '', output: '5' }]);
    const r = await readJsonlDataset(f, byteTok(), { addBos: false });
    const prompt = ALPACA_PROMPT_NO_INPUT.replace('{instruction}', 'Add 2 and 3.');
    expect(prompt.endsWith('### Instruction:\nAdd 2 and 3.\n\n### Response:\n')).toBe(true);
    expect([...r.documents[0]!.ids]).toEqual(bytes(`${prompt}5`));
    expect([...r.documents[0]!.mask]).toEqual([...bytes(prompt).map(() => 0), 1]);
    expect(r.kinds.prompt_completion).toBe(1);
  });

  it('reads ShareGPT conversations with a named chat template, assistant turns as targets', async () => {
    const dir = makeTmpDir('sharegpt');
    const f = jsonl(dir, 'sg.jsonl', [{ conversations: [{ from: 'human', value: 'Hi' }, { from: 'gpt', value: 'Yo' }] }]);
    const tok = byteTok().withChatTemplate(resolveChatTemplate('chatml'));
    const r = await readJsonlDataset(f, tok);
    const before = '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n';
    const turn = 'Yo<|im_end|>\n';
    expect([...r.documents[0]!.ids]).toEqual(bytes(before + turn));
    expect([...r.documents[0]!.mask]).toEqual([...bytes(before).map(() => 0), ...bytes(turn).map(() => 1)]);
    // without a template: one clear line naming the file and line and the option
    await expect(readJsonlDataset(f, byteTok())).rejects.toThrow(`${f}:1: chat data needs a chat template, and the tokenizer (bytes) has none (pass --chat-template FILE|chatml|llama-2|zephyr`);
  });

  it('maps columns, and refuses unknown chat roles naming file and line', async () => {
    const dir = makeTmpDir('columns');
    const f = jsonl(dir, 'qa.jsonl', [{ question: 'Q?', answer: 'A' }]);
    const r = await readJsonlDataset(f, byteTok(), { columns: { prompt: 'question', completion: 'answer' }, addBos: false });
    expect([...r.documents[0]!.mask]).toEqual([0, 0, 1]);
    await expect(readJsonlDataset(f, byteTok(), { columns: { prompt: 'q' } })).rejects.toThrow(`${f}:1: column "q" (mapped to "prompt") is missing (found: question, answer)`);
    const tok = byteTok(NAMED_CHAT_TEMPLATES['chatml']);
    const roles = jsonl(dir, 'roles.jsonl', [{ messages: [{ role: 'user', content: 'a' }, { role: 'assistant', content: 'b' }] }, { messages: [{ role: 'human', content: 'a' }] }]);
    await expect(readJsonlDataset(roles, tok)).rejects.toThrow(`${roles}:2: "messages"[0].role "human" is not a chat role (expected system, user, assistant, tool; ShareGPT turns go in "conversations" as {from, value})`);
    const sg = jsonl(dir, 'sg.jsonl', [{ conversations: [{ from: 'robot', value: 'a' }] }]);
    await expect(readJsonlDataset(sg, tok)).rejects.toThrow(`${sg}:1: "conversations"[0].from "robot" is not a known ShareGPT role`);
    await expect(readJsonlDataset(f, byteTok(), { format: 'alpaca' })).rejects.toThrow(`${f}:1: "instruction" must be a string (Alpaca)`);
  });

  it('resolves --chat-template as a file or a name', () => {
    const dir = makeTmpDir('tmpl');
    const file = path.join(dir, 't.jinja');
    fs.writeFileSync(file, '{% for m in messages %}{{ m.content }}{% endfor %}');
    expect(resolveChatTemplate(file)).toBe('{% for m in messages %}{{ m.content }}{% endfor %}');
    expect(resolveChatTemplate('zephyr')).toBe(NAMED_CHAT_TEMPLATES['zephyr']);
    expect(() => resolveChatTemplate('nope')).toThrow('--chat-template "nope": no such file, and not a known template (chatml, llama-2, zephyr)');
  });
});

describe('eval reads what train reads', () => {
  let dir: string;
  beforeAll(async () => {
    dir = makeTmpDir('eval-formats');
    await writeTinyCheckpoint(dir, tinyMixtralConfig({ vocab_size: 300, bos_token_id: 0, eos_token_id: 1, max_position_embeddings: 256 }));
    writeTinyTokenizer(dir);
  });

  it('scores only the completion of prompt / completion lines (same NLL as a hand loop)', () => {
    const data = jsonl(dir, 'pc.jsonl', [{ prompt: 'Question: what colour is the sky? Answer:', completion: ' blue.' }, { instruction: 'Count', output: ' one, two' }]);
    const out = runCliJson<{ nll: number; tokens: number }>(['eval', '--model', dir, '--data', data, '--json']);
    const tok = MoeTokenizer.fromDir(dir);
    const { model } = loadModel(dir);
    let total = 0, tokens = 0;
    const prompts = [['Question: what colour is the sky? Answer:', ' blue.'], [ALPACA_PROMPT_NO_INPUT.replace('{instruction}', 'Count'), ' one, two']];
    for (const [p, c] of prompts) {
      const ids = tok.encode(p! + c!, { addEos: false });
      const nPrompt = tok.encode(p!, { addEos: false }).length;
      withScope(() => noGrad(() => {
        const lp = ops.logSoftmax(model.forward(new Tensor(Int32Array.from(ids), [1, ids.length]))).f;
        for (let t = nPrompt; t < ids.length; t++) { total -= lp[(t - 1) * 300 + ids[t]!]!; tokens++; }
      }));
    }
    expect(out.tokens).toBe(tokens);
    expect(Math.abs(out.nll - total / tokens)).toBeLessThan(1e-5);
  });

  it('renders chat lines with --chat-template, and without one says so naming file and line', () => {
    const data = jsonl(dir, 'chat.jsonl', [{ messages: [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello there' }] }]);
    const err = expectOneErrorLine(runCli(['eval', '--model', dir, '--data', data]));
    expect(err).toContain(`${data}:1: chat data needs a chat template`);
    const out = runCliJson<{ tokens: number; nll: number }>(['eval', '--model', dir, '--data', data, '--chat-template', 'chatml', '--json']);
    expect(out.tokens).toBeGreaterThan(3);
    expect(Number.isFinite(out.nll)).toBe(true);
  });

  it('reads PIQA fields for --task mc with the same result as the canonical fields', () => {
    const piqa = [
      { goal: 'To dry wet hands,', sol1: 'use a towel.', sol2: 'use a bucket of water.', label: 0 },
      { goal: 'The sky is', sol1: 'green.', sol2: 'blue.', label: 1 },
    ];
    const a = jsonl(dir, 'piqa.jsonl', piqa);
    const b = jsonl(dir, 'canon.jsonl', piqa.map((p) => ({ context: p.goal, choices: [p.sol1, p.sol2], label: p.label })));
    const ra = runCliJson<{ acc: number; items: number; per_item: { log_likelihoods: number[] }[] }>(['eval', '--model', dir, '--data', a, '--task', 'mc', '--json', '--per-item']);
    const rb = runCliJson<{ acc: number; items: number; per_item: { log_likelihoods: number[] }[] }>(['eval', '--model', dir, '--data', b, '--task', 'mc', '--json', '--per-item']);
    expect(ra.items).toBe(2);
    expect(ra.per_item.map((p) => p.log_likelihoods)).toEqual(rb.per_item.map((p) => p.log_likelihoods));
    // the same through an explicit --columns mapping
    const c = jsonl(dir, 'renamed.jsonl', piqa.map((p) => ({ q: p.goal, x: p.sol1, y: p.sol2, gold: p.label })));
    const rc = runCliJson<{ per_item: { log_likelihoods: number[] }[] }>(['eval', '--model', dir, '--data', c, '--task', 'mc', '--columns', 'context=q,choices=x+y', '--json', '--per-item']);
    expect(rc.per_item.map((p) => p.log_likelihoods)).toEqual(rb.per_item.map((p) => p.log_likelihoods));
  });
});
