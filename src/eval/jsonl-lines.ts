/**
 * Reads a JSONL file as parsed records with their line numbers. Blank lines are skipped; a line
 * that is not valid JSON is the one-line error "FILE:LINE: invalid JSON (...)". Callers validate
 * each record and report their own problems with `lineError` so every message names FILE:LINE.
 */
import * as fs from 'node:fs';
import { errorText } from '../io/index.js';

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

/** Reads the whole file (eval sets are small) and parses every non-blank line. */
export function readJsonlRecords(file: string, opts: ReadJsonlOptions = {}): JsonlRecord[] {
  let text: string;
  try {
    const stat = fs.statSync(file);
    if (stat.isDirectory()) throw new Error(`${file}: is a directory (expected a JSONL file)`);
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new Error(`${file}: data file not found`);
    if (code !== undefined) throw new Error(`${file}: cannot read (${code})`);
    throw err;
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const lines = text.split('\n');
  const out: JsonlRecord[] = [];
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!.replace(/\r$/, '');
    if (raw.trim() === '') continue;
    try {
      out.push({ line: i + 1, value: JSON.parse(raw) });
    } catch (err) {
      const isLast = i === lines.length - 1;
      if (isLast && opts.allowPartialLastLine) continue;
      throw lineError(file, i + 1, `invalid JSON (${errorText(err)})`);
    }
  }
  return out;
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
