/**
 * CSV / TSV files as records (RFC 4180): the first row names the columns, every later row is one
 * record `{column: value}` with string values; quoted fields may hold the delimiter, doubled quotes
 * and line breaks. Read through io/line-reader.ts, so the line-length limit and strict UTF-8 apply
 * (a record's line is the line it starts on). We write this small parser ourselves: the npm CSV
 * packages are either stream-only (csv-parse) or browser-first, and this is 60 lines.
 */
import { readLines, type ReadLinesOptions } from '../io/line-reader.js';

export interface CsvRecord {
  line: number;
  value: Record<string, string>;
}

/** Splits one row that may continue over several physical lines; `more()` supplies the next line. */
function parseRow(first: string, delimiter: string, more: () => string | null, where: () => string): string[] {
  const fields: string[] = [];
  let text = first;
  let i = 0;
  let field = '';
  for (;;) {
    if (i < text.length && text[i] === '"' && field === '') {
      // quoted field
      i++;
      for (;;) {
        if (i >= text.length) {
          const next = more();
          if (next === null) throw new Error(`${where()}: unterminated quoted field at the end of the file`);
          field += '\n';
          text = next;
          i = 0;
          continue;
        }
        const c = text[i]!;
        if (c === '"') {
          if (text[i + 1] === '"') { field += '"'; i += 2; continue; }
          i++;
          break;
        }
        field += c;
        i++;
      }
      if (i < text.length && text[i] !== delimiter) throw new Error(`${where()}: unexpected ${JSON.stringify(text[i])} after a closing quote (expected ${JSON.stringify(delimiter)} or the end of the row)`);
    } else {
      const end = text.indexOf(delimiter, i);
      field += end === -1 ? text.slice(i) : text.slice(i, end);
      i = end === -1 ? text.length : end;
    }
    fields.push(field);
    field = '';
    if (i >= text.length) return fields;
    i++; // the delimiter
    if (i >= text.length) { fields.push(''); return fields; }
  }
}

/** Records of a CSV (',') or TSV ('\t') file. */
export function* readCsvRecords(file: string, opts: ReadLinesOptions & { delimiter?: string } = {}): Generator<CsvRecord> {
  const delimiter = opts.delimiter ?? (file.toLowerCase().endsWith('.tsv') ? '\t' : ',');
  const lines = readLines(file, opts);
  let header: string[] | null = null;
  let current = 0;
  const more = (): string | null => {
    const r = lines.next();
    if (r.done) return null;
    current = r.value.line;
    return r.value.text;
  };
  for (;;) {
    const r = lines.next();
    if (r.done) break;
    if (r.value.text.trim() === '') continue;
    const start = r.value.line;
    current = start;
    const row = parseRow(r.value.text, delimiter, more, () => `${file}:${current}`);
    if (header === null) {
      header = row.map((h) => h.trim());
      const dup = header.find((h, k) => header!.indexOf(h) !== k);
      if (dup !== undefined) throw new Error(`${file}:${start}: column ${JSON.stringify(dup)} appears twice in the header`);
      continue;
    }
    if (row.length !== header.length) {
      throw new Error(`${file}:${start}: ${row.length} fields, the header has ${header.length} (${header.join(', ')})`);
    }
    const value: Record<string, string> = {};
    header.forEach((h, k) => { value[h] = row[k]!; });
    yield { line: start, value };
  }
  if (header === null) throw new Error(`${file}: empty CSV file (expected a header row)`);
}
