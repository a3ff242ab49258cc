/**
 * One entry point for the trainer and the CLI: data files -> tokenised documents, through the
 * token cache. Record files (.jsonl, .json, .csv, .tsv) are read as records (jsonl-dataset.ts,
 * data-records.ts), Parquet / Arrow / compressed files are refused by name, any other file is
 * plain UTF-8 text (text-dataset.ts). With `cachePath` the documents are cached there (token-cache.ts)
 * and reused while the files, the tokenizer and these options are unchanged.
 */
import type { EncodingErrors } from '../io/utf8.js';
import { recordFileKind } from './data-records.js';
import type { TokenizedDocument } from './documents.js';
import { readJsonlDataset, type TokenIdsOnly } from './jsonl-dataset.js';
import type { ColumnMap, DataFormat } from './record-format.js';
import { readTextDataset, type TextSplit } from './text-dataset.js';
import { loadOrBuildTokenCache, stampSources } from './token-cache.js';
import type { MoeTokenizer } from './tokenizer.js';

export interface LoadDatasetOptions {
  files: readonly string[];
  /** The tokenizer, or (a model directory without one) just the vocabulary size for input_ids data. */
  tokenizer: MoeTokenizer | TokenIdsOnly;
  /** Token cache file (e.g. RUN_DIR/data-cache/train.tokens); omitted or null = no cache. */
  cachePath?: string | null;
  /** JSONL: skip and count bad lines instead of failing. */
  skipBadLines?: boolean;
  /** Plain text: how files are cut into documents (default 'file'). */
  textSplit?: TextSplit;
  /** BOS for text / prompt-completion documents (default: tokenizer.addBosDefault). */
  addBos?: boolean;
  /** Record files: how lines are recognised (record-format.ts; default 'auto'). */
  format?: DataFormat;
  /** Record files: our field -> the user's column. */
  columns?: ColumnMap;
  /** Bytes that are not UTF-8: an error naming file and line ('strict', default) or U+FFFD ('replace'). */
  encodingErrors?: EncodingErrors;
}

export interface LoadedDataset {
  documents: TokenizedDocument[];
  /** Bad JSONL lines skipped (skipBadLines), over all files. */
  skippedLines: number;
  /** "FILE:LINE: reason" of the first skipped lines. */
  skippedExamples: string[];
  cacheHit: boolean;
  /** Why the cache was rebuilt (null on a hit or without a cache). */
  cacheMissReason: string | null;
}

export async function loadTokenizedDataset(opts: LoadDatasetOptions): Promise<LoadedDataset> {
  const { files, tokenizer } = opts;
  if (files.length === 0) throw new Error('no data files given');
  const addBos = opts.addBos ?? ('idsOnly' in tokenizer ? false : tokenizer.addBosDefault);
  const textSplit = opts.textSplit ?? 'file';
  const skipBadLines = opts.skipBadLines ?? false;
  const format = opts.format ?? 'auto';
  const columns = opts.columns ?? {};
  const encodingErrors = opts.encodingErrors ?? 'strict';
  for (const f of files) recordFileKind(f); // refuse Parquet & co. before any work

  const build = async (): Promise<{ documents: TokenizedDocument[]; meta: Record<string, unknown> }> => {
    const documents: TokenizedDocument[] = [];
    let skipped = 0;
    const examples: string[] = [];
    for (const file of files) {
      if (recordFileKind(file) !== 'text') {
        const r = await readJsonlDataset(file, tokenizer, { skipBadLines, addBos, format, columns, encodingErrors });
        for (const d of r.documents) documents.push(d);
        skipped += r.skipped;
        for (const e of r.skippedExamples) if (examples.length < 10) examples.push(e);
      } else {
        if ('idsOnly' in tokenizer) throw new Error(`${file}: plain text needs a tokenizer, and ${tokenizer.source} has no tokenizer.json (use a JSONL of "input_ids", or set tokenizer.dir)`);
        for (const d of readTextDataset([file], tokenizer, { split: textSplit, addBos, encodingErrors })) documents.push(d);
      }
    }
    return { documents, meta: { skippedLines: skipped, skippedExamples: examples } };
  };

  if (opts.cachePath === undefined || opts.cachePath === null) {
    const built = await build();
    return {
      documents: built.documents,
      skippedLines: built.meta.skippedLines as number,
      skippedExamples: built.meta.skippedExamples as string[],
      cacheHit: false,
      cacheMissReason: null,
    };
  }
  const key = {
    sources: stampSources(files),
    tokenizerHash: 'idsOnly' in tokenizer ? `ids-only:${tokenizer.vocabSize}` : tokenizer.hash,
    options: { addBos, textSplit, skipBadLines, format, columns, encodingErrors },
  };
  const r = await loadOrBuildTokenCache(opts.cachePath, key, build);
  return {
    documents: r.documents,
    skippedLines: typeof r.meta.skippedLines === 'number' ? r.meta.skippedLines : 0,
    skippedExamples: Array.isArray(r.meta.skippedExamples) ? (r.meta.skippedExamples as string[]) : [],
    cacheHit: r.hit,
    cacheMissReason: r.reason,
  };
}
