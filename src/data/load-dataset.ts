/**
 * One entry point for the trainer and the CLI: data files -> tokenised documents, through the
 * token cache. Files ending in ".jsonl" are read as JSONL (jsonl-dataset.ts), any other file as
 * plain text (text-dataset.ts). With `cachePath` the documents are cached there (token-cache.ts)
 * and reused while the files, the tokenizer and these options are unchanged.
 */
import type { TokenizedDocument } from './documents.js';
import { readJsonlDataset } from './jsonl-dataset.js';
import { readTextDataset, type TextSplit } from './text-dataset.js';
import { loadOrBuildTokenCache, stampSources } from './token-cache.js';
import type { MoeTokenizer } from './tokenizer.js';

export interface LoadDatasetOptions {
  files: readonly string[];
  tokenizer: MoeTokenizer;
  /** Token cache file (e.g. RUN_DIR/data-cache/train.tokens); omitted or null = no cache. */
  cachePath?: string | null;
  /** JSONL: skip and count bad lines instead of failing. */
  skipBadLines?: boolean;
  /** Plain text: how files are cut into documents (default 'file'). */
  textSplit?: TextSplit;
  /** BOS for text / prompt-completion documents (default: tokenizer.addBosDefault). */
  addBos?: boolean;
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
  const addBos = opts.addBos ?? tokenizer.addBosDefault;
  const textSplit = opts.textSplit ?? 'file';
  const skipBadLines = opts.skipBadLines ?? false;

  const build = async (): Promise<{ documents: TokenizedDocument[]; meta: Record<string, unknown> }> => {
    const documents: TokenizedDocument[] = [];
    let skipped = 0;
    const examples: string[] = [];
    for (const file of files) {
      if (file.toLowerCase().endsWith('.jsonl')) {
        const r = await readJsonlDataset(file, tokenizer, { skipBadLines, addBos });
        for (const d of r.documents) documents.push(d);
        skipped += r.skipped;
        for (const e of r.skippedExamples) if (examples.length < 10) examples.push(e);
      } else {
        for (const d of readTextDataset([file], tokenizer, { split: textSplit, addBos })) documents.push(d);
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
    tokenizerHash: tokenizer.hash,
    options: { addBos, textSplit, skipBadLines },
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
