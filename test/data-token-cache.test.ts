/** Token cache: hit when unchanged, rebuilt on any change of sources/tokenizer/options or corruption. */
import { mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { byteLevelTokenizerConfig, trainByteLevelBpe } from '../src/data/bpe-trainer.js';
import type { TokenizedDocument } from '../src/data/documents.js';
import { loadTokenizedDataset } from '../src/data/load-dataset.js';
import { loadOrBuildTokenCache, readTokenCache, stampSources, writeTokenCache } from '../src/data/token-cache.js';
import { MoeTokenizer } from '../src/data/tokenizer.js';

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'moe-cache-'));
  dirs.push(d);
  return d;
}
afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

const docs = (): TokenizedDocument[] => [
  { ids: Int32Array.from([5, 6, 7]), mask: Uint8Array.from([0, 1, 1]) },
  { ids: new Int32Array(0), mask: new Uint8Array(0) },
  { ids: Int32Array.from([-3, 2147483647]), mask: Uint8Array.from([1, 0]) },
];
const plain = (ds: TokenizedDocument[]) => ds.map((d) => ({ ids: [...d.ids], mask: [...d.mask] }));

describe('token cache', () => {
  it('round-trips documents byte-exactly', () => {
    const dir = tempDir();
    const src = join(dir, 'a.txt');
    writeFileSync(src, 'x');
    const key = { sources: stampSources([src]), tokenizerHash: 'h', options: { b: 1, a: [1, 2] } };
    const path = join(dir, 'c.tokens');
    writeTokenCache(path, key, docs(), { skippedLines: 4 });
    const back = readTokenCache(path);
    expect(plain(back.documents)).toEqual(plain(docs()));
    expect(back.header.meta).toEqual({ skippedLines: 4 });
    expect(back.header.numTokens).toBe(5);
    expect(readdirSync(dir).sort()).toEqual(['a.txt', 'c.tokens']); // no temp file left behind
  });

  it('hits when unchanged and rebuilds on each kind of change', async () => {
    const dir = tempDir();
    const src = join(dir, 'a.txt');
    writeFileSync(src, 'hello');
    const path = join(dir, 'sub', 'train.tokens');
    let builds = 0;
    const build = () => { builds++; return { documents: docs(), meta: { n: builds } }; };
    const key = (hash = 'tok1', options: Record<string, unknown> = { addBos: true }) =>
      ({ sources: stampSources([src]), tokenizerHash: hash, options });

    let r = await loadOrBuildTokenCache(path, key(), build);
    expect([r.hit, r.reason, builds]).toEqual([false, 'no cache file', 1]);
    r = await loadOrBuildTokenCache(path, key(), build);
    expect([r.hit, r.reason, builds]).toEqual([true, null, 1]);
    expect(plain(r.documents)).toEqual(plain(docs()));
    expect(r.meta).toEqual({ n: 1 });
    // Option key order does not matter.
    r = await loadOrBuildTokenCache(path, key('tok1', { addBos: true }), build);
    expect(r.hit).toBe(true);

    r = await loadOrBuildTokenCache(path, key('tok2'), build);
    expect([r.hit, r.reason, builds]).toEqual([false, 'the tokenizer changed', 2]);
    r = await loadOrBuildTokenCache(path, key('tok2', { addBos: false }), build);
    expect([r.hit, r.reason, builds]).toEqual([false, 'the tokenisation options changed', 3]);
    writeFileSync(src, 'hello, longer');
    r = await loadOrBuildTokenCache(path, key('tok2', { addBos: false }), build);
    expect([r.hit, r.reason, builds]).toEqual([false, `${src} changed (size or modification time)`, 4]);
    utimesSync(src, new Date(1_000_000), new Date(2_000_000)); // same size, new mtime
    r = await loadOrBuildTokenCache(path, key('tok2', { addBos: false }), build);
    expect([r.hit, builds]).toEqual([false, 5]);
    r = await loadOrBuildTokenCache(path, key('tok2', { addBos: false }), build);
    expect([r.hit, builds]).toEqual([true, 5]);

    // A truncated or garbled cache is rebuilt, not an error.
    truncateSync(path, readFileSync(path).length - 3);
    r = await loadOrBuildTokenCache(path, key('tok2', { addBos: false }), build);
    expect(r.hit).toBe(false);
    expect(r.reason).toMatch(/truncated or corrupt/);
    writeFileSync(path, 'garbage');
    r = await loadOrBuildTokenCache(path, key('tok2', { addBos: false }), build);
    expect([r.hit, r.reason]).toEqual([false, `${path}: not a moe-tune token cache (bad magic)`]);
    expect(readdirSync(join(dir, 'sub'))).toEqual(['train.tokens']);
  });

  it('caches a whole dataset load (text + JSONL) with the skipped-line count', async () => {
    const dir = tempDir();
    const txt = join(dir, 'corpus.txt');
    const jsonl = join(dir, 'data.jsonl');
    writeFileSync(txt, 'some plain text\n\nand a second paragraph\n');
    writeFileSync(jsonl, `${JSON.stringify({ text: 'json text' })}\nnot json\n${JSON.stringify({ prompt: 'p', completion: 'c' })}\n`);
    const tok = MoeTokenizer.fromJson(trainByteLevelBpe(['some plain text and a paragraph'], { vocabSize: 280 }), byteLevelTokenizerConfig());
    const cachePath = join(dir, 'cache', 'train.tokens');
    const opts = { files: [txt, jsonl], tokenizer: tok, cachePath, skipBadLines: true, textSplit: 'paragraph' as const };
    const first = await loadTokenizedDataset(opts);
    expect([first.cacheHit, first.skippedLines, first.documents.length]).toEqual([false, 1, 4]);
    expect(first.skippedExamples).toHaveLength(1);
    expect(first.skippedExamples[0]).toMatch(new RegExp(`^${jsonl}:2: invalid JSON \\(`));
    const second = await loadTokenizedDataset(opts);
    expect([second.cacheHit, second.skippedLines, second.skippedExamples]).toEqual([true, 1, first.skippedExamples]);
    expect(plain(second.documents)).toEqual(plain(first.documents));
    expect(tok.decode(second.documents[1]!.ids)).toBe('and a second paragraph');
    const other = await loadTokenizedDataset({ ...opts, textSplit: 'file' });
    expect([other.cacheHit, other.cacheMissReason, other.documents.length]).toEqual([false, 'the tokenisation options changed', 3]);
    await expect(loadTokenizedDataset({ ...opts, skipBadLines: false })).rejects.toThrow(`${jsonl}:2: invalid JSON`);
  });
});
