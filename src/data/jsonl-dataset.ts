/**
 * JSONL datasets: one JSON object per line, tokenised into documents with loss masks.
 *
 * A line holds one of (checked in this order):
 *   - `input_ids`: already tokenised (integers in [0, vocabSize)); every token is a target;
 *   - `messages`: a chat, `[{role, content}, ...]`, rendered with the tokenizer's chat template;
 *     assistant turns are targets, everything else is masked (see instruction-masking.ts);
 *   - `prompt` + `completion`: strings, concatenated as given; only the completion is a target;
 *   - `text`: a string; every token is a target (a leading BOS is not).
 * BOS: `text` and `prompt`/`completion` get BOS per `addBos` (default: the tokenizer's default);
 * `messages` rely on the template; `input_ids` are taken as they are. EOS is added by the packer.
 *
 * Other shapes (Alpaca, ShareGPT, renamed columns) are mapped onto these first (record-format.ts,
 * `format` / `columns`). `messages` roles must be system / user / assistant / tool. The file may
 * also be .json (an array) or .csv / .tsv (data-records.ts); lines stream with a bounded length and
 * strict UTF-8 (io/line-reader.ts).
 *
 * Blank lines are ignored. Any other line that is not one of the above (invalid JSON, wrong field
 * types, ids out of range, a template that raises) is an error "FILE:LINE: reason"; with
 * `skipBadLines` it is skipped and counted instead. Problems that no line can fix (a `messages`
 * line when the tokenizer has no chat template, an unreadable file) always throw.
 */
import type { EncodingErrors } from '../io/utf8.js';
import { JsonLineError, readRecords } from './data-records.js';
import { documentFromIds, type TokenizedDocument } from './documents.js';
import { encodeChat, encodePromptCompletion } from './instruction-masking.js';
import { checkChatRoles, normalizeRecord, RecordFormatError, type ColumnMap, type DataFormat } from './record-format.js';
import type { ChatMessage, MoeTokenizer } from './tokenizer.js';

/**
 * What reading `input_ids` lines needs when a model directory has no tokenizer: the vocabulary
 * size (ids must be below it); any line that needs text tokenised is then an error.
 */
export interface TokenIdsOnly {
  readonly idsOnly: true;
  readonly vocabSize: number;
  /** Where the missing tokenizer would have been (for the error). */
  readonly source: string;
}

/** How records are recognised (record-format.ts). */
export interface RecordShapeOptions {
  /** 'auto' (default): by the fields each line has. */
  format?: DataFormat;
  /** Our field -> the user's column (e.g. {prompt: 'question', completion: 'answer'}). */
  columns?: ColumnMap;
}

export interface JsonlDatasetOptions extends RecordShapeOptions {
  /** Skip (and count) bad lines instead of throwing (the CLI's --skip-bad-lines). */
  skipBadLines?: boolean;
  /** BOS for `text` and `prompt`/`completion` lines (default: tokenizer.addBosDefault). */
  addBos?: boolean;
  /** Bytes that are not UTF-8: an error naming file and line ('strict', default) or U+FFFD ('replace'). */
  encodingErrors?: EncodingErrors;
  /** Longest line in bytes (default: $MOE_TUNE_MAX_LINE_BYTES, else 64 MiB). */
  maxLineBytes?: number;
}

export type JsonlRecordKind = 'input_ids' | 'messages' | 'prompt_completion' | 'text';

export interface JsonlDatasetResult {
  documents: TokenizedDocument[];
  /** Lines skipped as bad (only with skipBadLines). */
  skipped: number;
  /** "FILE:LINE: reason" of the first 10 skipped lines. */
  skippedExamples: string[];
  /** Documents per record kind. */
  kinds: Record<JsonlRecordKind, number>;
}

/** A line-level problem: skippable with skipBadLines. */
class BadRecordError extends Error {}

/** A problem no line can fix: always fatal. */
class FatalRecordError extends Error {}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'string' ? 'a string' : typeof v === 'object' ? 'an object' : `${typeof v} ${String(v)}`;
}

function requireString(rec: Record<string, unknown>, field: 'prompt' | 'completion'): string {
  const v = rec[field];
  if (v === undefined) throw new BadRecordError(`"${field}" is missing (an instruction line needs "prompt" and "completion" strings)`);
  if (typeof v !== 'string') throw new BadRecordError(`"${field}" must be a string, got ${describe(v)}`);
  return v;
}

function parseMessages(v: unknown): ChatMessage[] {
  if (!Array.isArray(v) || v.length === 0) throw new BadRecordError(`"messages" must be a non-empty array of {role, content}, got ${describe(v)}`);
  return v.map((m, i) => {
    if (typeof m !== 'object' || m === null || Array.isArray(m)) {
      throw new BadRecordError(`"messages"[${i}] must be an object {role, content}, got ${describe(m)}`);
    }
    const rec = m as Record<string, unknown>;
    if (typeof rec.role !== 'string') throw new BadRecordError(`"messages"[${i}].role must be a string, got ${describe(rec.role)}`);
    if (typeof rec.content !== 'string') throw new BadRecordError(`"messages"[${i}].content must be a string, got ${describe(rec.content)}`);
    return rec as ChatMessage;
  });
}


/**
 * Tokenises one parsed JSONL record (see the file comment). Throws an Error whose message is the
 * reason (without file/line) when the record is bad.
 */
export function tokenizeJsonlRecord(record: unknown, tokenizer: MoeTokenizer | TokenIdsOnly,
  opts: { addBos?: boolean } & RecordShapeOptions = {}): { doc: TokenizedDocument; kind: JsonlRecordKind } {
  if (typeof record !== 'object' || record === null || Array.isArray(record)) {
    throw new BadRecordError(`expected a JSON object with "text", "prompt"/"completion", "messages" or "input_ids", got ${describe(record)}`);
  }
  let rec: Record<string, unknown>;
  try {
    rec = normalizeRecord(record as Record<string, unknown>, opts.format ?? 'auto', opts.columns ?? {});
  } catch (e) {
    if (e instanceof RecordFormatError) throw new BadRecordError(e.message);
    throw e;
  }
  if (rec.input_ids !== undefined) {
    const ids = rec.input_ids;
    if (!Array.isArray(ids)) throw new BadRecordError(`"input_ids" must be an array of token ids, got ${describe(ids)}`);
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= tokenizer.vocabSize) {
        throw new BadRecordError(`"input_ids"[${i}] = ${JSON.stringify(id)} is not a token id (expected an integer in [0, ${tokenizer.vocabSize}))`);
      }
    }
    return { doc: documentFromIds(ids as number[]), kind: 'input_ids' };
  }
  if ('idsOnly' in tokenizer) {
    throw new FatalRecordError(`this line needs a tokenizer to turn text into ids, and ${tokenizer.source} has no tokenizer.json (use "input_ids" lines, or set tokenizer.dir)`);
  }
  const addBos = opts.addBos ?? tokenizer.addBosDefault;
  if (rec.messages !== undefined) {
    const messages = parseMessages(rec.messages);
    try {
      checkChatRoles(messages);
    } catch (e) {
      throw new BadRecordError((e as Error).message);
    }
    if (tokenizer.chatTemplate === null) {
      throw new FatalRecordError(`chat data needs a chat template, and the tokenizer (${tokenizer.source}) has none (pass --chat-template FILE|chatml|llama-2|zephyr, or set chat_template in tokenizer_config.json)`);
    }
    try {
      return { doc: encodeChat(tokenizer, messages), kind: 'messages' };
    } catch (e) {
      throw new BadRecordError((e as Error).message);
    }
  }
  if (rec.prompt !== undefined || rec.completion !== undefined) {
    const prompt = requireString(rec, 'prompt');
    const completion = requireString(rec, 'completion');
    return { doc: encodePromptCompletion(tokenizer, prompt, completion, { addBos }), kind: 'prompt_completion' };
  }
  if (rec.text !== undefined) {
    if (typeof rec.text !== 'string') throw new BadRecordError(`"text" must be a string, got ${describe(rec.text)}`);
    const ids = tokenizer.encode(rec.text, { addBos, addEos: false });
    return { doc: documentFromIds(ids, addBos ? tokenizer.bosId : null), kind: 'text' };
  }
  throw new BadRecordError(`expected one of "text", "prompt"/"completion", "messages" or "input_ids" (found keys: ${Object.keys(rec).join(', ') || 'none'})`);
}

/** Reads and tokenises a JSONL (or .json / .csv / .tsv) file (see the file comment). */
export async function readJsonlDataset(path: string, tokenizer: MoeTokenizer | TokenIdsOnly,
  opts: JsonlDatasetOptions = {}): Promise<JsonlDatasetResult> {
  const result: JsonlDatasetResult = {
    documents: [],
    skipped: 0,
    skippedExamples: [],
    kinds: { input_ids: 0, messages: 0, prompt_completion: 0, text: 0 },
  };
  const records = readRecords(path, {
    onInvalidJson: 'yield',
    ...(opts.encodingErrors ? { encodingErrors: opts.encodingErrors } : {}),
    ...(opts.maxLineBytes !== undefined ? { maxLineBytes: opts.maxLineBytes } : {}),
  });
  for (const { line: lineNo, value } of records) {
    try {
      if (value instanceof JsonLineError) throw new BadRecordError(value.message);
      const { doc, kind } = tokenizeJsonlRecord(value, tokenizer, opts);
      result.documents.push(doc);
      result.kinds[kind]++;
    } catch (e) {
      const msg = `${path}:${lineNo}: ${(e as Error).message}`;
      if (!(e instanceof BadRecordError) || !opts.skipBadLines) throw new Error(msg);
      result.skipped++;
      if (result.skippedExamples.length < 10) result.skippedExamples.push(msg);
    }
  }
  return result;
}
