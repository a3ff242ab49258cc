/**
 * Reads a JSONL file as parsed records with their line numbers. Blank lines are skipped; a line
 * that is not valid JSON is the one-line error "FILE:LINE: invalid JSON (...)". Callers validate
 * each record and report their own problems with `lineError` so every message names FILE:LINE.
 */
import { readRecords, recordFileKind } from '../data/data-records.js';

export interface JsonlRecord {
  /** 1-based line number in the file. */
  line: number;
  value: unknown;
}

export interface ReadJsonlOptions {
  /** Tolerate an unterminated, unparsable last line (a file another process is still appending to). */
  allowPartialLastLine?: boolean;
}

/** "FILE:LINE: message" as an Error. */
export function lineError(file: string, line: number, message: string): Error {
  return new Error(`${file}:${line}: ${message}`);
}

/**
 * Parses every non-blank line of a .jsonl (or a .json array, a .csv / .tsv) file, streamed with a
 * bounded line length and strict UTF-8 (data/data-records.ts); Parquet & co. are refused by name.
 */
export function readJsonlRecords(file: string, opts: ReadJsonlOptions = {}): JsonlRecord[] {
  const kind = recordFileKind(file);
  if (kind === 'text') throw new Error(`${file}: expected a .jsonl, .json, .csv or .tsv data file, not plain text (write one JSON object per line)`);
  return [...readRecords(file, { allowPartialLastLine: opts.allowPartialLastLine ?? false })];
}

/** A short description of a JSON value's type for error messages. */
export function describeJson(v: unknown): string {
  if (v === undefined) return 'nothing (the field is missing)';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return 'a string';
  if (typeof v === 'object') return 'an object';
  return `${typeof v} ${String(v)}`;
}

export function isJsonObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
