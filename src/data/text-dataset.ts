/**
 * Plain-text datasets: UTF-8 files cut into documents and tokenised; every token is a target
 * (a leading BOS is not).
 *
 * Document split (`split`):
 *   - 'file' (default): a whole file is one document, text as is;
 *   - 'paragraph': blocks separated by one or more blank lines, each trimmed, empty ones dropped;
 *   - 'line': each non-blank line, without its line break.
 * Document ids are the path ('file') or "path#n" (n counts from 1).
 */
import { readFileSync } from 'node:fs';
import { requireRegularFile } from '../io/regular-file.js';
import { readRecords, recordFileKind } from './data-records.js';
import { decodeUtf8, type EncodingErrors } from '../io/utf8.js';
import { documentFromIds, type TextDocument, type TokenizedDocument } from './documents.js';
import type { MoeTokenizer } from './tokenizer.js';

export type TextSplit = 'file' | 'paragraph' | 'line';

export interface TextDatasetOptions {
  split?: TextSplit;
  /** Prepend BOS to each document (default: tokenizer.addBosDefault). */
  addBos?: boolean;
  /** Bytes that are not UTF-8: an error naming file and line ('strict', default) or U+FFFD ('replace'). */
  encodingErrors?: EncodingErrors;
}

/**
 * Reads a UTF-8 text file (a leading byte-order mark is dropped); one-line errors name the file, and
 * for bytes that are not UTF-8 the line (unless encodingErrors is 'replace'). FIFOs and devices are
 * refused before opening.
 */
export function readUtf8File(path: string, encodingErrors: EncodingErrors = 'strict'): string {
  requireRegularFile(path, 'text file');
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new Error(`${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const text = decodeUtf8(bytes, path, { encodingErrors });
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

/** Cuts one file's text into documents per `split`. */
export function splitText(id: string, text: string, split: TextSplit = 'file'): TextDocument[] {
  switch (split) {
    case 'file':
      return [{ id, text }];
    case 'paragraph':
      return text.split(/\r?\n[ \t]*\r?\n/).map((p) => p.trim()).filter((p) => p.length > 0)
        .map((p, i) => ({ id: `${id}#${i + 1}`, text: p }));
    case 'line':
      return text.split(/\r?\n/).filter((l) => l.trim().length > 0).map((l, i) => ({ id: `${id}#${i + 1}`, text: l }));
    default:
      throw new Error(`text split must be 'file', 'paragraph' or 'line', got ${JSON.stringify(split)}`);
  }
}

/**
 * Reads text files into documents. A record file (.jsonl, .json, .csv, .tsv) is read as records,
 * each record's "text" one document ("path#line"), never as plain text; Parquet & co. are refused
 * by name (data-records.ts).
 */
export function readTextDocuments(paths: readonly string[], split: TextSplit = 'file', encodingErrors: EncodingErrors = 'strict'): TextDocument[] {
  return paths.flatMap((p) => (recordFileKind(p) === 'text' ? splitText(p, readUtf8File(p, encodingErrors), split) : recordTexts(p, encodingErrors)));
}

function recordTexts(file: string, encodingErrors: EncodingErrors): TextDocument[] {
  const out: TextDocument[] = [];
  for (const { line, value } of readRecords(file, { encodingErrors })) {
    const text = typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>)['text'] : undefined;
    if (typeof text !== 'string') throw new Error(`${file}:${line}: expected an object with a "text" string (plain-text documents read "text" from record files)`);
    out.push({ id: `${file}#${line}`, text });
  }
  return out;
}

/** Tokenises text documents; every token is a target except a leading BOS. */
export function tokenizeTexts(docs: Iterable<TextDocument | string>, tokenizer: MoeTokenizer,
  opts: { addBos?: boolean } = {}): TokenizedDocument[] {
  const addBos = opts.addBos ?? tokenizer.addBosDefault;
  const out: TokenizedDocument[] = [];
  for (const d of docs) {
    const text = typeof d === 'string' ? d : d.text;
    out.push(documentFromIds(tokenizer.encode(text, { addBos, addEos: false }), addBos ? tokenizer.bosId : null));
  }
  return out;
}

/** readTextDocuments + tokenizeTexts. */
export function readTextDataset(paths: readonly string[], tokenizer: MoeTokenizer,
  opts: TextDatasetOptions = {}): TokenizedDocument[] {
  return tokenizeTexts(readTextDocuments(paths, opts.split ?? 'file', opts.encodingErrors ?? 'strict'), tokenizer, opts);
}
