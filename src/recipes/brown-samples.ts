/**
 * Fine-tuning data made from the embedded Brown corpus, so a tiny recipe needs no download: the
 * training documents are cut into samples of about `words` words (at sentence-ish boundaries:
 * a cut waits for a word ending in . ! or ?, up to 1.5x the length) and written as a JSONL of
 * {"text": ...} lines. Deterministic: the same options give the same file.
 */
import { loadBrownCorpus } from '../data/brown-corpus.js';
import { writeFileAtomic } from '../io/index.js';

export interface BrownSampleOptions {
  /** Target words per sample. */
  words: number;
  /** Samples to write (null: all). */
  samples: number | null;
  /** Only the first N training documents after the skipped ones (null: all). */
  maxDocs: number | null;
  /** Training documents skipped first (default 0). */
  skipDocs?: number;
}

export function brownSamples(opts: BrownSampleOptions): string[] {
  const docs = loadBrownCorpus().train.slice(opts.skipDocs ?? 0);
  const use = opts.maxDocs ? docs.slice(0, opts.maxDocs) : docs;
  const out: string[] = [];
  const limit = opts.samples ?? Infinity;
  for (const d of use) {
    const words = d.text.split(/\s+/).filter((w) => w.length > 0);
    let cur: string[] = [];
    for (const w of words) {
      cur.push(w);
      const end = /[.!?]["')]?$/.test(w);
      if ((cur.length >= opts.words && end) || cur.length >= Math.ceil(opts.words * 1.5)) {
        out.push(cur.join(' '));
        cur = [];
        if (out.length >= limit) return out;
      }
    }
    if (cur.length >= Math.ceil(opts.words / 4)) out.push(cur.join(' '));
    if (out.length >= limit) return out;
  }
  return out;
}

/** Writes the samples as JSONL ({"text": ...} per line); returns how many. */
export function writeBrownSamplesJsonl(file: string, opts: BrownSampleOptions): number {
  const samples = brownSamples(opts);
  writeFileAtomic(file, samples.map((t) => JSON.stringify({ text: t })).join('\n') + '\n');
  return samples.length;
}
