/** The Brown corpus reader: tags stripped, prose rebuilt, ~1M words, a fixed disjoint split. */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  brownCorpusDir, brownFileToText, detokenizeBrown, loadBrownCorpus, readBrownCorpus, splitBrownCorpus, stripBrownTag,
} from '../src/data/brown-corpus.js';

describe('Brown corpus', () => {
  const docs = readBrownCorpus();

  it('has 500 documents with ids ca01 ... cr09 and the known start of ca01', () => {
    expect(docs).toHaveLength(500);
    expect(docs[0]!.id).toBe('ca01');
    expect(docs[499]!.id).toBe('cr09');
    expect(docs[0]!.text.startsWith(
      'The Fulton County Grand Jury said Friday an investigation of Atlanta\'s recent primary election produced "no evidence" that any irregularities took place. The jury further said in term-end presentments that the City Executive Committee, which had over-all charge of the election, "deserves the praise and thanks of the City of Atlanta" for the manner',
    )).toBe(true);
  });

  it('strips every POS tag and has about a million words', () => {
    // Exactly one "/" (the tag's) was removed per corpus token: slashes inside words ("and/or",
    // "1/2") stay.
    const dir = brownCorpusDir();
    let rawSlashes = 0, rawTokens = 0, outSlashes = 0;
    for (const d of docs) {
      const raw = readFileSync(join(dir, d.id), 'latin1');
      rawSlashes += raw.split('/').length - 1;
      rawTokens += raw.split(/\s+/).filter((t) => t.length > 0).length;
      outSlashes += d.text.split('/').length - 1;
    }
    expect(rawTokens).toBe(1_161_192);
    expect(outSlashes).toBe(rawSlashes - rawTokens);
    let words = 0, doubled = 0;
    for (const d of docs) {
      expect(d.text).not.toMatch(/\/(at|nn|nns|in|jj|np|vbd|cc|rb|cs)(-tl|-hl)?(\s|$)/);
      expect(d.text).not.toContain('``');
      expect(d.text).not.toMatch(/(^|\s)''(\s|$)/); // closing quotes rendered ('' inside 10'' stays)
      doubled += (d.text.match(/;\s*;|\?\s*\?|!\s*!/g) ?? []).length;
      words += d.text.split(/\s+/).filter((w) => /[A-Za-z0-9]/.test(w)).length;
    }
    // The corpus doubles ~5900 ";" "?" "!" tokens; collapsed, one stray "; ;" line (cf28) remains.
    expect(doubled).toBeLessThanOrEqual(1);
    // 1,161,192 corpus tokens, of which ~1.0M are words (the rest punctuation).
    expect(words).toBeGreaterThan(950_000);
    expect(words).toBeLessThan(1_060_000);
  });

  it('strips tags at the last slash and detokenises per the documented rule', () => {
    expect(stripBrownTag('The/at')).toBe('The');
    expect(stripBrownTag('and/or/cc')).toBe('and/or');
    expect(stripBrownTag('//in')).toBe('/');
    expect(detokenizeBrown(['He', 'said', '``', 'yes', "''", ',', 'and', '(', 'then', ')', 'left', '--', 'fast', '.'])).toBe(
      'He said "yes", and (then) left -- fast.',
    );
    expect(brownFileToText('\n\n\tHi/uh ./.\n\n\n\tBye/uh !/. !/.\n')).toBe('Hi. Bye!');
  });

  it('splits deterministically into disjoint train/validation sets (every 20th document)', () => {
    const a = loadBrownCorpus();
    const b = splitBrownCorpus([...docs].reverse());
    expect(a.validation.map((d) => d.id)).toEqual(b.validation.map((d) => d.id));
    expect(a.train.map((d) => d.id)).toEqual(b.train.map((d) => d.id));
    expect(a.validation).toHaveLength(25);
    expect(a.train).toHaveLength(475);
    expect(a.validation.slice(0, 3).map((d) => d.id)).toEqual(['ca20', 'ca40', 'cb16']);
    const trainIds = new Set(a.train.map((d) => d.id));
    for (const d of a.validation) expect(trainIds.has(d.id)).toBe(false);
    expect(new Set([...trainIds, ...a.validation.map((d) => d.id)]).size).toBe(500);
    // Spread over genres: validation draws from at least 10 of the 15 genre letters.
    expect(new Set(a.validation.map((d) => d.id[1])).size).toBeGreaterThanOrEqual(10);
  });
});
