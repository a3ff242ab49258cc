/**
 * Multiple-choice accuracy by log-likelihood, ARC / HellaSwag style (as lm-evaluation-harness
 * scores them): each choice is a continuation of the context; its score is the sum of the
 * log-probabilities of its tokens given the context and the tokens before it. `acc` picks the
 * highest score; `acc_norm` the highest score divided by the choice's length in characters (the
 * choice text as given, without the delimiter). Ties go to the lower index.
 *
 * JSONL fields (one item per line; the first present name wins):
 *   context:  "context" | "ctx" | "question" | "query" | "prompt"   (a string, used verbatim)
 *   choices:  "choices" | "endings" | "options"  (an array of strings, or ARC's {"text": [...], "label": [...]})
 *   answer:   "label" | "answer" | "gold" | "answerKey"  (a 0-based index, a numeric string, a choice label
 *             from choices.label such as "B", or a letter A-Z counted from A = 0)
 * Pre-tokenised items: "context_ids" (token ids) and "choice_ids" | "choices_ids" (one id array per
 * choice) with an answer field; acc_norm then divides by the choice's token count.
 *
 * Text items: the continuation is delimiter + choice (delimiter " " by default); trailing whitespace
 * of the context moves to the continuation; context and context + continuation are tokenised
 * (BOS per the tokenizer config) and the continuation's tokens are those after the context's. An
 * empty context is replaced by the BOS (else EOS) token so the first choice token has a context.
 */
import type { MoeTokenizer } from '../data/tokenizer.js';
import type { CausalLM } from '../models/causal-lm.js';
import { IGNORE_INDEX } from '../models/causal-lm.js';
import { ForwardContext } from '../models/forward-context.js';
import type { Router } from '../routers/router.js';
import { noGrad, ops, Tensor, withScope } from '../tensor/index.js';
import { describeJson, isJsonObject, lineError, readJsonlRecords } from './jsonl-lines.js';
import { withRouter } from './router-choice.js';
import { RouterStatsAccumulator, type RouterStatsSummary } from '../routers/stats.js';
import { routingSummary } from './flop-dims.js';
import { checkTokenIds } from './token-sequences.js';

export const MC_CONTEXT_FIELDS = ['context', 'ctx', 'question', 'query', 'prompt', 'goal'] as const;
export const MC_CHOICE_FIELDS = ['choices', 'endings', 'options'] as const;
export const MC_ANSWER_FIELDS = ['label', 'answer', 'gold', 'answerKey'] as const;

export type McItem =
  | { kind: 'text'; line: number; context: string; choices: string[]; label: number }
  | { kind: 'ids'; line: number; contextIds: number[]; choiceIds: number[][]; label: number };

function firstField(rec: Record<string, unknown>, names: readonly string[]): [string, unknown] | null {
  for (const n of names) if (rec[n] !== undefined) return [n, rec[n]];
  return null;
}

function resolveAnswer(value: unknown, field: string, n: number, labels: string[] | null): number {
  let idx: number | null = null;
  if (typeof value === 'number' && Number.isInteger(value)) idx = value;
  else if (typeof value === 'string') {
    const v = value.trim();
    if (labels && labels.includes(v)) idx = labels.indexOf(v);
    else if (/^\d+$/.test(v)) idx = Number(v);
    else if (/^[A-Za-z]$/.test(v)) idx = v.toUpperCase().charCodeAt(0) - 65;
  }
  if (idx === null) throw new Error(`"${field}" must be a choice index, a numeric string or a choice letter, got ${JSON.stringify(value)}`);
  if (idx < 0 || idx >= n) throw new Error(`"${field}" = ${JSON.stringify(value)} is outside the ${n} choices`);
  return idx;
}

/** PIQA's numbered solutions sol1, sol2, ... as one choices list. */
function numberedChoices(rec: Record<string, unknown>): [string, unknown] | null {
  const out: unknown[] = [];
  for (let k = 1; rec[`sol${k}`] !== undefined; k++) out.push(rec[`sol${k}`]);
  return out.length > 0 ? ['sol1, sol2', out] : null;
}

/**
 * Applies --columns (our field -> the file's column; "a+b" gathers several columns into a list,
 * e.g. choices=sol1+sol2). A mapped column that is missing is an error.
 */
export function mapMcColumns(value: unknown, columns: Readonly<Record<string, string>>): unknown {
  if (!isJsonObject(value) || Object.keys(columns).length === 0) return value;
  const out: Record<string, unknown> = { ...value };
  for (const [ours, theirs] of Object.entries(columns)) {
    const names = theirs.split('+').map((n) => n.trim());
    for (const n of names) if (value[n] === undefined) throw new Error(`column ${JSON.stringify(n)} (mapped to "${ours}") is missing (found: ${Object.keys(value).join(', ') || 'none'})`);
    out[ours] = names.length > 1 ? names.map((n) => value[n]) : value[names[0]!];
  }
  return out;
}

/** Parses one JSONL record into an item (throws the reason, without FILE:LINE). */
export function parseMcRecord(value: unknown, line: number, vocabSize: number): McItem {
  if (!isJsonObject(value)) throw new Error(`expected a JSON object, got ${describeJson(value)}`);
  const answer = firstField(value, MC_ANSWER_FIELDS);
  if (!answer) throw new Error(`no answer field (expected one of ${MC_ANSWER_FIELDS.join(', ')})`);
  if (value['context_ids'] !== undefined) {
    const contextIds = checkTokenIds(value['context_ids'], vocabSize, 'context_ids');
    const ch = firstField(value, ['choice_ids', 'choices_ids']);
    if (!ch || !Array.isArray(ch[1]) || ch[1].length < 2) throw new Error('"choice_ids" must be an array of at least 2 token-id arrays');
    const choiceIds = (ch[1] as unknown[]).map((c, i) => checkTokenIds(c, vocabSize, `${ch[0]}[${i}]`));
    choiceIds.forEach((c, i) => {
      if (c.length === 0) throw new Error(`"${ch[0]}"[${i}] is empty`);
    });
    if (contextIds.length === 0) throw new Error('"context_ids" is empty (the first choice token needs a context)');
    return { kind: 'ids', line, contextIds, choiceIds, label: resolveAnswer(answer[1], answer[0], choiceIds.length, null) };
  }
  const ctx = firstField(value, MC_CONTEXT_FIELDS);
  if (!ctx) throw new Error(`no context field (expected one of ${MC_CONTEXT_FIELDS.join(', ')}, or "context_ids")`);
  if (typeof ctx[1] !== 'string') throw new Error(`"${ctx[0]}" must be a string, got ${describeJson(ctx[1])}`);
  const ch = firstField(value, MC_CHOICE_FIELDS) ?? numberedChoices(value);
  if (!ch) throw new Error(`no choices field (expected one of ${MC_CHOICE_FIELDS.join(', ')}, or PIQA's sol1, sol2)`);
  let texts: unknown = ch[1];
  let labels: string[] | null = null;
  if (isJsonObject(texts)) {
    const obj = texts;
    texts = obj['text'];
    if (Array.isArray(obj['label']) && obj['label'].every((l) => typeof l === 'string')) labels = obj['label'] as string[];
  }
  if (!Array.isArray(texts) || texts.length < 2 || !texts.every((t) => typeof t === 'string')) {
    throw new Error(`"${ch[0]}" must be an array of at least 2 strings (or {"text": [...], "label": [...]}), got ${describeJson(ch[1])}`);
  }
  const choices = texts as string[];
  choices.forEach((c, i) => {
    if (c.length === 0) throw new Error(`"${ch[0]}"[${i}] is empty`);
  });
  return { kind: 'text', line, context: ctx[1], choices, label: resolveAnswer(answer[1], answer[0], choices.length, labels) };
}

export function readMultipleChoice(file: string, vocabSize: number, columns: Readonly<Record<string, string>> = {}): McItem[] {
  const items: McItem[] = [];
  for (const { line, value } of readJsonlRecords(file)) {
    try {
      items.push(parseMcRecord(mapMcColumns(value, columns), line, vocabSize));
    } catch (err) {
      throw lineError(file, line, (err as Error).message);
    }
  }
  if (items.length === 0) throw new Error(`${file}: no multiple-choice items`);
  return items;
}

export interface McOptions {
  /** Needed for text items. */
  tokenizer?: MoeTokenizer;
  router?: Router;
  /** Put between context and choice (default " "). */
  delimiter?: string;
  /** For error messages ("FILE:LINE"). */
  file?: string;
  onProgress?: (done: number, total: number) => void;
}

export interface McItemResult {
  line: number;
  label: number;
  /** Sum log-likelihood of each choice. */
  logLikelihoods: number[];
  /** Length each score is divided by for acc_norm (characters, or tokens for pre-tokenised items). */
  lengths: number[];
  pred: number;
  predNorm: number;
}

export interface McResult {
  /** acc: fraction of items whose highest-likelihood choice is the answer. */
  accuracy: number;
  /** acc_norm: the same with likelihoods divided by choice length. */
  accNorm: number;
  items: number;
  /** What acc_norm divides by: characters (text items), tokens (pre-tokenised), or mixed. */
  normalisation: 'characters' | 'tokens' | 'mixed';
  perItem: McItemResult[];
  routerStats: RouterStatsSummary | null;
}

/** Index of the largest value (the first on ties). */
export function argmax(values: readonly number[]): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}

/** Context and continuation token ids of a text choice (see the file comment). */
export function encodeChoice(tok: MoeTokenizer, context: string, choice: string, delimiter: string): { context: number[]; continuation: number[] } {
  let ctx = context;
  let cont = delimiter + choice;
  const trailing = /\s+$/.exec(ctx);
  if (trailing) {
    ctx = ctx.slice(0, trailing.index);
    cont = trailing[0] + cont;
  }
  const ctxIds = tok.encode(ctx, { addEos: false });
  const whole = tok.encode(ctx + cont, { addEos: false });
  let continuation = whole.slice(ctxIds.length);
  let contextIds = ctxIds;
  if (contextIds.length === 0) {
    const start = tok.bosId ?? tok.eosId;
    if (start === null) throw new Error('empty context and the tokenizer has no BOS or EOS token to start from');
    contextIds = [start];
    continuation = whole;
  }
  return { context: contextIds, continuation };
}

/** Sum log-likelihood of `continuation` after `context` (one forward pass). */
function scoreContinuation(model: CausalLM, context: readonly number[], continuation: readonly number[], tally: RouterStatsAccumulator, where: string): number {
  const all = [...context, ...continuation];
  const T = all.length - 1;
  const max = model.config.maxPositionEmbeddings;
  if (T > max) throw new Error(`${where}: context + choice is ${T} tokens, longer than the model's max_position_embeddings ${max}`);
  const ids = new Int32Array(all.slice(0, T));
  const targets = new Int32Array(T).fill(IGNORE_INDEX);
  const scored = new Uint8Array(T);
  for (let t = context.length - 1; t < T; t++) {
    targets[t] = all[t + 1]!;
    scored[t] = 1;
  }
  let nll = 0;
  withScope(() => noGrad(() => {
    const ctx = ForwardContext.eval();
    const logits = model.forward(new Tensor(ids, [1, T]), { ctx });
    nll = ops.crossEntropy(logits, new Tensor(targets, [1, T]), { ignoreIndex: IGNORE_INDEX, reduction: 'sum' }).item();
    tally.add(ctx.routing, scored);
  }));
  return -nll;
}

export function multipleChoice(model: CausalLM, items: readonly McItem[], opts: McOptions = {}): McResult {
  const delimiter = opts.delimiter ?? ' ';
  const tally = new RouterStatsAccumulator();
  const perItem: McItemResult[] = [];
  let kinds = 0;
  withRouter(model, opts.router, () => {
    items.forEach((item, n) => {
      const lls: number[] = [];
      const lengths: number[] = [];
      if (item.kind === 'ids') {
        kinds |= 2;
        for (const c of item.choiceIds) {
          lls.push(scoreContinuation(model, item.contextIds, c, tally, `${opts.file ?? 'multiple-choice data'}:${item.line}`));
          lengths.push(c.length);
        }
      } else {
        kinds |= 1;
        const tok = opts.tokenizer;
        const where = `${opts.file ?? 'multiple-choice data'}:${item.line}`;
        if (!tok) throw new Error(`${where}: text items need the model's tokenizer (tokenizer.json), or use "context_ids" / "choice_ids"`);
        item.choices.forEach((choice, i) => {
          const enc = encodeChoice(tok, item.context, choice, delimiter);
          if (enc.continuation.length === 0) throw new Error(`${where}: choice ${i} tokenises to no tokens`);
          lls.push(scoreContinuation(model, enc.context, enc.continuation, tally, where));
          lengths.push(choice.length);
        });
      }
      perItem.push({
        line: item.line,
        label: item.label,
        logLikelihoods: lls,
        lengths,
        pred: argmax(lls),
        predNorm: argmax(lls.map((ll, i) => ll / lengths[i]!)),
      });
      opts.onProgress?.(n + 1, items.length);
    });
  });
  const correct = perItem.filter((r) => r.pred === r.label).length;
  const correctNorm = perItem.filter((r) => r.predNorm === r.label).length;
  return {
    accuracy: correct / perItem.length,
    accNorm: correctNorm / perItem.length,
    items: perItem.length,
    normalisation: kinds === 1 ? 'characters' : kinds === 2 ? 'tokens' : 'mixed',
    perItem,
    routerStats: routingSummary(tally, model.config),
  };
}
