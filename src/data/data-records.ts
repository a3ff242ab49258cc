/**
 * Record files by extension, read as what they are and never as plain text:
 *   - `.jsonl` / `.ndjson`: one JSON value per line (blank lines skipped);
 *   - `.json`: a JSON array of records (at most the line limit in size), else JSON Lines;
 *   - `.csv` / `.tsv`: a header row and string-valued records (csv-records.ts);
 *   - Parquet, Arrow, compressed and other binary containers are refused by name with how to
 *     convert them (we have no Parquet reader and do not guess at bytes).
 * Every other extension is plain text (text-dataset.ts). Lines stream through io/line-reader.ts:
 * bounded length, strict UTF-8, non-regular files refused, each error "FILE:LINE: reason".
 */
import * as path from 'node:path';
import { readLines, maxLineBytesOf, type ReadLinesOptions } from '../io/line-reader.js';
import { requireRegularFile } from '../io/regular-file.js';
import { readCsvRecords } from './csv-records.js';

export interface DataRecord {
  line: number;
  value: unknown;
}

export type RecordFileKind = 'jsonl' | 'json' | 'csv' | 'text';

const REFUSED: Record<string, string> = {
  '.parquet': 'Parquet', '.pq': 'Parquet', '.arrow': 'Arrow', '.feather': 'Arrow (Feather)',
  '.gz': 'gzip-compressed', '.zst': 'zstd-compressed', '.bz2': 'bzip2-compressed', '.xz': 'xz-compressed', '.zip': 'ZIP',
  '.tar': 'tar', '.xlsx': 'Excel', '.xls': 'Excel', '.safetensors': 'safetensors', '.npy': 'NumPy', '.pt': 'PyTorch', '.pkl': 'pickle',
};

/** How a data file is read, by extension; throws one line for a format we refuse. */
export function recordFileKind(file: string): RecordFileKind {
  const ext = path.extname(file).toLowerCase();
  const refused = REFUSED[ext];
  if (refused !== undefined) {
    const hint = refused.startsWith('Parquet') || refused.startsWith('Arrow')
      ? ` (convert it to JSONL, e.g. python -c "import pandas as pd; pd.read_parquet('${path.basename(file)}').to_json('data.jsonl', orient='records', lines=True)")`
      : ' (decompress / convert it to .jsonl, .csv or UTF-8 text)';
    throw new Error(`${file}: ${refused} files are not read by moe-tune; data files are .jsonl, .json, .csv, .tsv or UTF-8 text${hint}`);
  }
  if (ext === '.jsonl' || ext === '.ndjson') return 'jsonl';
  if (ext === '.json') return 'json';
  if (ext === '.csv' || ext === '.tsv') return 'csv';
  return 'text';
}

export function isRecordFile(file: string): boolean {
  return recordFileKind(file) !== 'text';
}

export interface ReadRecordsOptions extends ReadLinesOptions {
  /** JSONL: tolerate an unterminated, unparsable last line (a file still being appended to). */
  allowPartialLastLine?: boolean;
  /**
   * What to do with a line that is not valid JSON: 'throw' (default) the error "FILE:LINE: invalid
   * JSON (...)", or 'yield' it as a record whose value is a JsonLineError (for --skip-bad-lines).
   */
  onInvalidJson?: 'throw' | 'yield';
}

/** A JSONL line that did not parse (with onInvalidJson: 'yield'). */
export class JsonLineError {
  constructor(readonly message: string) {}
}

function* jsonLines(file: string, opts: ReadRecordsOptions): Generator<DataRecord> {
  for (const { line, text, terminated } of readLines(file, opts)) {
    if (text.trim() === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      if (!terminated && opts.allowPartialLastLine) continue;
      const message = `invalid JSON (${(err as Error).message})`;
      if (opts.onInvalidJson === 'yield') { yield { line, value: new JsonLineError(message) }; continue; }
      throw new Error(`${file}:${line}: ${message}`);
    }
    yield { line, value };
  }
}

/** The records of a .jsonl / .json / .csv / .tsv file (see the file comment). */
export function* readRecords(file: string, opts: ReadRecordsOptions = {}): Generator<DataRecord> {
  const kind = recordFileKind(file);
  if (kind === 'text') throw new Error(`${file}: not a record file (expected .jsonl, .json, .csv or .tsv)`);
  if (kind === 'csv') { yield* readCsvRecords(file, opts); return; }
  if (kind === 'json') {
    const stat = requireRegularFile(file, opts.what ?? 'data file');
    // a JSON array: the whole file is one value, so it must fit the line limit
    const lines = readLines(file, { ...opts, maxLineBytes: Math.max(maxLineBytesOf(opts.maxLineBytes), 0) });
    const first = lines.next();
    lines.return(undefined);
    if (!first.done && first.value.text.trimStart().startsWith('[')) {
      if (stat.size > maxLineBytesOf(opts.maxLineBytes)) {
        throw new Error(`${file}: a JSON array of ${stat.size} bytes, over the ${maxLineBytesOf(opts.maxLineBytes)}-byte limit for one value; write it as JSON Lines (.jsonl) instead`);
      }
      const text = [...readLines(file, { ...opts, maxLineBytes: stat.size + 1 })].map((l) => l.text).join('\n');
      let arr: unknown;
      try {
        arr = JSON.parse(text);
      } catch (err) {
        throw new Error(`${file}: invalid JSON (${(err as Error).message})`);
      }
      if (!Array.isArray(arr)) throw new Error(`${file}: expected a JSON array of records or JSON Lines`);
      for (let i = 0; i < arr.length; i++) yield { line: i + 1, value: arr[i] };
      return;
    }
  }
  yield* jsonLines(file, opts);
}
