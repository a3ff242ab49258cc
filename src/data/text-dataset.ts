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
import { documentFromIds, type TextDocument, type TokenizedDocument } from './documents.js';
import type { MoeTokenizer } from './tokenizer.js';

export type TextSplit = 'file' | 'paragraph' | 'line';

export interface TextDatasetOptions {
  split?: TextSplit;
  /** Prepend BOS to each document (default: tokenizer.addBosDefault). */
  addBos?: boolean;
}

/** Reads a UTF-8 text file (a leading byte-order mark is dropped); one-line errors name the file. */
export function readUtf8File(path: string): string {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new Error(`${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new Error(`${path}: not valid UTF-8 text`);
  }
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

/** Reads text files into documents. */
export function readTextDocuments(paths: readonly string[], split: TextSplit = 'file'): TextDocument[] {
  return paths.flatMap((p) => splitText(p, readUtf8File(p), split));
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
  return tokenizeTexts(readTextDocuments(paths, opts.split ?? 'file'), tokenizer, opts);
}
