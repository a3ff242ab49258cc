/**
 * Multiple-choice accuracy by log-likelihood: a hand-made JSONL in the common field layouts (ARC,
 * HellaSwag, plain, pre-tokenised) scored through `moe-tune eval --task mc` must give the acc and
 * acc_norm this test computes with its own loop over model.forward; plus the record parser.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { MoeTokenizer } from '../src/data/tokenizer.js';
import { multipleChoice, parseMcRecord, readMultipleChoice } from '../src/eval/multiple-choice.js';
import { loadModel } from '../src/models/load.js';
import { noGrad, ops, Tensor, withScope } from '../src/tensor/index.js';
import { expectOneErrorLine, runCli, runCliJson } from './helpers/cli.js';
import { tinyMixtralConfig, writeTinyCheckpoint } from './helpers/tiny-model.js';
import { writeTinyTokenizer } from './helpers/tiny-tokenizer.js';
import { makeTmpDir } from './helpers/tmpdir.js';

/** Items as the test knows them: context, choices, the answer index. */
interface Known {
  context: string | number[];
  choices: (string | number[])[];
  label: number;
  line: Record<string, unknown>;
}

const KNOWN: Known[] = [
  { context: 'The quick brown fox', choices: ['jumps over the dog.', 'sleeps in the sun.', 'routes each token.'], label: 0,
    line: { question: 'The quick brown fox', choices: ['jumps over the dog.', 'sleeps in the sun.', 'routes each token.'], answer: 0 } },
  { context: 'Question: what colour is the sky? Answer:', choices: ['blue', 'green', 'four', 'the router'], label: 1,
    line: { question: 'Question: what colour is the sky? Answer:', choices: { text: ['blue', 'green', 'four', 'the router'], label: ['A', 'B', 'C', 'D'] }, answerKey: 'B' } },
  { context: 'Once upon a time there was', choices: ['a small model', 'a lazy dog that learned to count to three', 'one'], label: 2,
    line: { ctx: 'Once upon a time there was', endings: ['a small model', 'a lazy dog that learned to count to three', 'one'], label: '2' } },
  { context: 'A mixture of experts ', choices: ['routes each token', 'jumps', 'counts'], label: 1,
    line: { context: 'A mixture of experts ', options: ['routes each token', 'jumps', 'counts'], gold: 1 } },
  { context: 'one, two,', choices: ['three', 'four'], label: 0,
    line: { question: 'one, two,', choices: { text: ['three', 'four'], label: ['1', '2'] }, answerKey: '1' } },
  { context: [0, 40, 41, 42], choices: [[50, 51], [60], [70, 71, 72]], label: 2,
    line: { context_ids: [0, 40, 41, 42], choice_ids: [[50, 51], [60], [70, 71, 72]], label: 2 } },
];

/** Sum log p(continuation | context) by a plain loop over model.forward + logSoftmax. */
function logLikelihood(model: ReturnType<typeof loadModel>['model'], context: number[], cont: number[]): number {
  const all = [...context, ...cont];
  let ll = 0;
  withScope(() => noGrad(() => {
    const lp = ops.logSoftmax(model.forward(new Tensor(Int32Array.from(all), [1, all.length]))).f;
    const V = model.config.vocabSize;
    for (let j = 0; j < cont.length; j++) {
      const pos = context.length - 1 + j;
      ll += lp[pos * V + all[pos + 1]!]!;
    }
  }));
  return ll;
}

/** The test's own tokenisation of a text choice: context (BOS per config), then " " + choice; trailing context spaces move over. */
function encodeText(tok: MoeTokenizer, context: string, choice: string): [number[], number[]] {
  const trimmed = context.replace(/\s+$/, '');
  const moved = context.slice(trimmed.length);
  const ctx = tok.encode(trimmed);
  const whole = tok.encode(`${trimmed}${moved} ${choice}`);
  expect(whole.slice(0, ctx.length)).toEqual(ctx);
  return [ctx, whole.slice(ctx.length)];
}

const argmax = (v: number[]): number => v.reduce((b, x, i) => (x > v[b]! ? i : b), 0);

describe('multiple-choice eval', () => {
  const root = makeTmpDir('eval-mc');
  const dir = path.join(root, 'model');
  const data = path.join(root, 'mc.jsonl');
  let tok: MoeTokenizer;

  beforeAll(async () => {
    await writeTinyCheckpoint(dir, tinyMixtralConfig({ vocab_size: 300, bos_token_id: 0, eos_token_id: 1 }), { seed: 7, std: 0.3 });
    tok = writeTinyTokenizer(dir, true);
    fs.writeFileSync(data, `${KNOWN.map((k) => JSON.stringify(k.line)).join('\n')}\n`);
  });

  it('acc and acc_norm through the CLI equal an independent computation', () => {
    const { model } = loadModel(dir);
    let correct = 0;
    let correctNorm = 0;
    const lls: number[][] = [];
    for (const k of KNOWN) {
      const scores: number[] = [];
      const lengths: number[] = [];
      for (const c of k.choices) {
        if (typeof c === 'string') {
          const [ctx, cont] = encodeText(tok, k.context as string, c);
          scores.push(logLikelihood(model, ctx, cont));
          lengths.push(c.length);
        } else {
          scores.push(logLikelihood(model, k.context as number[], c));
          lengths.push(c.length);
        }
      }
      lls.push(scores);
      if (argmax(scores) === k.label) correct++;
      if (argmax(scores.map((s, i) => s / lengths[i]!)) === k.label) correctNorm++;
    }
    const out = runCliJson<{ acc: number; acc_norm: number; items: number; acc_norm_by: string; load: number; per_item: { label: number; log_likelihoods: number[] }[] }>(
      ['eval', '--model', dir, '--data', data, '--task', 'mc', '--per-item', '--json']);
    expect(out.items).toBe(KNOWN.length);
    expect(out.acc).toBeCloseTo(correct / KNOWN.length, 12);
    expect(out.acc_norm).toBeCloseTo(correctNorm / KNOWN.length, 12);
    expect(out.acc_norm_by).toBe('mixed');
    expect(out.load).toBe(2);
    out.per_item.forEach((r, i) => {
      expect(r.label).toBe(KNOWN[i]!.label);
      r.log_likelihoods.forEach((ll, j) => expect(ll).toBeCloseTo(lls[i]![j]!, 3));
    });
    // the library with the same items gives the same numbers
    const lib = multipleChoice(model, readMultipleChoice(data, 300), { tokenizer: tok });
    expect(lib.accuracy).toBe(out.acc);
    expect(lib.accNorm).toBe(out.acc_norm);
  });

  it('a file without an answer field is one error line naming FILE:LINE', () => {
    const bad = path.join(root, 'bad.jsonl');
    fs.writeFileSync(bad, `${JSON.stringify(KNOWN[0]!.line)}\n${JSON.stringify({ question: 'q', choices: ['a', 'b'] })}\n`);
    expect(expectOneErrorLine(runCli(['eval', '--model', dir, '--data', bad, '--task', 'mc']))).toContain(`${bad}:2: no answer field (expected one of label, answer, gold, answerKey)`);
  });
});

describe('multiple-choice record parser', () => {
  it('accepts ARC, HellaSwag and plain layouts and resolves answers', () => {
    const arc = parseMcRecord({ question: 'q', choices: { text: ['a', 'b', 'c'], label: ['A', 'B', 'C'] }, answerKey: 'C' }, 1, 10);
    expect(arc).toMatchObject({ kind: 'text', context: 'q', choices: ['a', 'b', 'c'], label: 2 });
    expect(parseMcRecord({ ctx: 'c', endings: ['x', 'y'], label: '1' }, 1, 10)).toMatchObject({ label: 1 });
    expect(parseMcRecord({ context: 'c', choices: ['x', 'y'], answer: 'b' }, 1, 10)).toMatchObject({ label: 1 });
    expect(parseMcRecord({ query: 'c', options: ['x', 'y'], gold: 0 }, 1, 10)).toMatchObject({ label: 0 });
    expect(parseMcRecord({ context_ids: [1], choices_ids: [[2], [3]], answer: 1 }, 1, 10)).toMatchObject({ kind: 'ids', label: 1 });
  });

  it('rejects bad records with the field and what was expected', () => {
    expect(() => parseMcRecord({ question: 'q', choices: ['a'], answer: 0 }, 1, 10)).toThrow(/"choices" must be an array of at least 2 strings/);
    expect(() => parseMcRecord({ question: 'q', choices: ['a', 'b'], answer: 2 }, 1, 10)).toThrow(/"answer" = 2 is outside the 2 choices/);
    expect(() => parseMcRecord({ choices: ['a', 'b'], answer: 0 }, 1, 10)).toThrow(/no context field/);
    expect(() => parseMcRecord({ context_ids: [1, 99], choice_ids: [[2], [3]], label: 0 }, 1, 10)).toThrow(/"context_ids"\[1\] = 99 is not a token id/);
    expect(() => parseMcRecord([1], 1, 10)).toThrow(/expected a JSON object, got an array/);
  });
});
