/**
 * Issue 18, items 8, 14, 15 and the file-format half of 3: data files that used to crash, hang or
 * be misread. Each case failed before the change: a 65 MiB+ JSONL line was read whole (300 MB ran
 * V8 out of memory), a FIFO given as data / weights blocked forever in open(), Latin-1 bytes in a
 * JSONL line became U+FFFD silently, and a .csv / .parquet file was read as plain text.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { byteLevelTokenizerConfig, trainByteLevelBpe } from '../src/data/bpe-trainer.js';
import { readRecords } from '../src/data/data-records.js';
import { readJsonlDataset } from '../src/data/jsonl-dataset.js';
import { loadTokenizedDataset } from '../src/data/load-dataset.js';
import { readTextDataset, readTextDocuments } from '../src/data/text-dataset.js';
import { MoeTokenizer } from '../src/data/tokenizer.js';
import { readLines, DEFAULT_MAX_LINE_BYTES } from '../src/io/line-reader.js';
import { firstInvalidUtf8 } from '../src/io/utf8.js';
import { SafetensorsFile } from '../src/io/safetensors-reader.js';
import { readJsonlRecords } from '../src/eval/jsonl-lines.js';
import { makeTmpDir } from './helpers/tmpdir.js';

const tok = MoeTokenizer.fromJson(trainByteLevelBpe([], { vocabSize: 259 }), byteLevelTokenizerConfig());
const bytes = (s: string) => [...Buffer.from(s, 'utf8')].map((b) => 3 + b);

describe('line length is bounded (item 8)', () => {
  it('refuses a line over the limit with FILE:LINE, holding at most the limit', async () => {
    const dir = makeTmpDir('longline');
    const file = path.join(dir, 'long.jsonl');
    // line 2 is 65 MiB + 20 bytes: over the 64 MiB default
    const fd = fs.openSync(file, 'w');
    fs.writeSync(fd, `${JSON.stringify({ text: 'ok' })}\n{"text": "`);
    const block = Buffer.alloc(1 << 20, 0x61);
    for (let i = 0; i < 65; i++) fs.writeSync(fd, block);
    fs.writeSync(fd, '"}\n');
    fs.closeSync(fd);
    expect(DEFAULT_MAX_LINE_BYTES).toBe(64 * 1024 * 1024);
    const before = process.memoryUsage().rss;
    await expect(readJsonlDataset(file, tok)).rejects.toThrow(`${file}:2: line longer than 64 MiB (the limit for one line; split the record, or raise it with MOE_TUNE_MAX_LINE_BYTES)`);
    // the reader never held the 65 MiB line plus its UTF-16 string and parse tree (> 200 MB before)
    expect(process.memoryUsage().rss - before).toBeLessThan(150 * 1024 * 1024);
    expect(() => readJsonlRecords(file)).toThrow(`${file}:2: line longer than 64 MiB`);
  });

  it('counts lines across 1 MiB chunk boundaries and honours an explicit limit', () => {
    const dir = makeTmpDir('chunks');
    const file = path.join(dir, 'a.txt');
    const long = 'x'.repeat((1 << 20) + 5);
    fs.writeFileSync(file, `\ufeffa\r\n${long}\nbb\nlast`);
    const lines = [...readLines(file)];
    expect(lines.map((l) => [l.line, l.text.length, l.terminated])).toEqual([[1, 1, true], [2, (1 << 20) + 5, true], [3, 2, true], [4, 4, false]]);
    expect(() => [...readLines(file, { maxLineBytes: 1 << 20 })]).toThrow(`${file}:2: line longer than 1 MiB`);
    expect(() => [...readLines(file, { maxLineBytes: 10 })]).toThrow(`${file}:2: line longer than 10 bytes`);
  });
});

describe('non-regular files are refused by name (item 14)', () => {
  it('refuses a FIFO as data, tokenizer and weights file without blocking', async () => {
    const dir = makeTmpDir('fifo');
    const fifo = path.join(dir, 'data.jsonl');
    execFileSync('mkfifo', [fifo]);
    const t0 = Date.now();
    await expect(readJsonlDataset(fifo, tok)).rejects.toThrow(`${fifo}: is a FIFO (named pipe), not a regular file (expected data file)`);
    expect(() => readJsonlRecords(fifo)).toThrow(`${fifo}: is a FIFO (named pipe), not a regular file`);
    const txt = path.join(dir, 'notes.txt');
    execFileSync('mkfifo', [txt]);
    expect(() => readTextDataset([txt], tok)).toThrow(`${txt}: is a FIFO (named pipe), not a regular file (expected text file)`);
    const weights = path.join(dir, 'model.safetensors');
    execFileSync('mkfifo', [weights]);
    expect(() => SafetensorsFile.open(weights)).toThrow(`${weights}: is a FIFO (named pipe), not a regular file (expected a safetensors file)`);
    expect(() => readTextDataset(['/dev/zero'], tok)).toThrow('/dev/zero: is a character device, not a regular file');
    expect(Date.now() - t0).toBeLessThan(5000);
  });
});

describe('bytes that are not UTF-8 (item 15)', () => {
  const latin1Jsonl = (dir: string): string => {
    const file = path.join(dir, 'latin1.jsonl');
    fs.writeFileSync(file, Buffer.concat([Buffer.from('{"text": "ok"}\n{"text": "caf'), Buffer.from([0xe9]), Buffer.from('"}\n')]));
    return file;
  };

  it('is an error naming file, line and byte by default', async () => {
    const file = latin1Jsonl(makeTmpDir('latin1'));
    await expect(readJsonlDataset(file, tok)).rejects.toThrow(`${file}:2: not valid UTF-8 (byte 0xE9 at byte 13 of the line); re-encode the file as UTF-8 (e.g. iconv -f latin1 -t utf-8), or set data.encoding_errors: replace`);
    // not skippable as a bad line: the file is wrong, not one record
    await expect(readJsonlDataset(file, tok, { skipBadLines: true })).rejects.toThrow(`${file}:2: not valid UTF-8`);
    const txt = path.join(path.dirname(file), 'multi.txt');
    fs.writeFileSync(txt, Buffer.concat([Buffer.from('line one\nline two\nbad '), Buffer.from([0xc3, 0x28])]));
    expect(() => readTextDataset([txt], tok)).toThrow(`${txt}:3: not valid UTF-8 (byte 0xC3 at byte 4 of the line)`);
  });

  it("replaces them with U+FFFD with encodingErrors 'replace'", async () => {
    const file = latin1Jsonl(makeTmpDir('latin1r'));
    const r = await readJsonlDataset(file, tok, { encodingErrors: 'replace', addBos: false });
    expect([...r.documents[1]!.ids]).toEqual(bytes('caf\ufffd'));
  });

  it('finds the first invalid byte as the Unicode table 3-7 defines well-formed UTF-8', () => {
    expect(firstInvalidUtf8(Buffer.from('héllo €𝄞', 'utf8'))).toBe(-1);
    expect(firstInvalidUtf8(Uint8Array.from([0x61, 0xc0, 0x80]))).toBe(1); // overlong
    expect(firstInvalidUtf8(Uint8Array.from([0x61, 0x62, 0xed, 0xa0, 0x80]))).toBe(2); // surrogate
    expect(firstInvalidUtf8(Uint8Array.from([0xf4, 0x90, 0x80, 0x80]))).toBe(0); // > U+10FFFF
    expect(firstInvalidUtf8(Uint8Array.from([0x61, 0xe2, 0x82]))).toBe(1); // truncated
  });
});

describe('.csv and .parquet files (item 3)', () => {
  it('reads a CSV by its header, quoted fields with commas, quotes and line breaks', async () => {
    const dir = makeTmpDir('csv');
    const file = path.join(dir, 'train.csv');
    fs.writeFileSync(file, 'prompt,completion\n"Q: a, b?",A\n"say ""hi""\nnow"," ok"\n');
    expect([...readRecords(file)]).toEqual([
      { line: 2, value: { prompt: 'Q: a, b?', completion: 'A' } },
      { line: 3, value: { prompt: 'say "hi"\nnow', completion: ' ok' } },
    ]);
    const ds = await loadTokenizedDataset({ files: [file], tokenizer: tok, addBos: false });
    expect([...ds.documents[0]!.ids]).toEqual(bytes('Q: a, b?A'));
    expect([...ds.documents[0]!.mask]).toEqual([...bytes('Q: a, b?').map(() => 0), 1]);
    const bad = path.join(dir, 'bad.csv');
    fs.writeFileSync(bad, 'text,label\nhello\n');
    await expect(loadTokenizedDataset({ files: [bad], tokenizer: tok })).rejects.toThrow(`${bad}:2: 1 fields, the header has 2 (text, label)`);
  });

  it('pretraining text reads "text" from record files, not their JSON as prose', () => {
    const dir = makeTmpDir('pre-records');
    const file = path.join(dir, 'corpus.jsonl');
    fs.writeFileSync(file, `${JSON.stringify({ text: 'first doc' })}\n\n${JSON.stringify({ text: 'second' })}\n`);
    expect(readTextDocuments([file], 'paragraph')).toEqual([{ id: `${file}#1`, text: 'first doc' }, { id: `${file}#3`, text: 'second' }]);
    const csv = path.join(dir, 'c.csv');
    fs.writeFileSync(csv, 'id,text\n1,"a, b"\n');
    expect(readTextDocuments([csv])).toEqual([{ id: `${csv}#2`, text: 'a, b' }]);
    fs.writeFileSync(file, `${JSON.stringify({ body: 'x' })}\n`);
    expect(() => readTextDocuments([file])).toThrow(`${file}:1: expected an object with a "text" string`);
    expect(() => readTextDocuments([path.join(dir, 'x.parquet')])).toThrow('Parquet files are not read by moe-tune');
  });

  it('refuses Parquet by name before reading it as text', async () => {
    const dir = makeTmpDir('parquet');
    const file = path.join(dir, 'train-00000.parquet');
    fs.writeFileSync(file, Buffer.from('PAR1\x15\x04\x15\x10PAR1', 'latin1'));
    await expect(loadTokenizedDataset({ files: [file], tokenizer: tok })).rejects.toThrow(`${file}: Parquet files are not read by moe-tune; data files are .jsonl, .json, .csv, .tsv or UTF-8 text (convert it to JSONL`);
    expect(() => readJsonlRecords(file)).toThrow(`${file}: Parquet files are not read by moe-tune`);
  });
});
