import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { withAtomicDir, writeFileAtomic, writeJsonAtomic } from '../src/io/atomic.js';
import { writeSafetensors } from '../src/io/safetensors-writer.js';
import { makeTmpDir } from './helpers/tmpdir.js';

describe('writeFileAtomic / writeJsonAtomic', () => {
  it('writes and replaces files, leaving no temp file', () => {
    const dir = makeTmpDir('atomic-file');
    const file = path.join(dir, 'sub', 'a.txt');
    writeFileAtomic(file, 'first');
    writeFileAtomic(file, new Uint8Array([104, 105]));
    expect(fs.readFileSync(file, 'utf8')).toBe('hi');
    writeJsonAtomic(path.join(dir, 'c.json'), { b: 1, a: [true] });
    expect(fs.readFileSync(path.join(dir, 'c.json'), 'utf8')).toBe('{\n  "b": 1,\n  "a": [\n    true\n  ]\n}\n');
    expect(fs.readdirSync(dir).sort()).toEqual(['c.json', 'sub']);
    expect(fs.readdirSync(path.join(dir, 'sub'))).toEqual(['a.txt']);
  });
});

describe('writeSafetensors is atomic', () => {
  it('leaves nothing behind (and the old file intact) when a tensor throws midway', () => {
    const dir = makeTmpDir('atomic-st');
    const file = path.join(dir, 'model.safetensors');
    fs.writeFileSync(file, 'old content');
    expect(() =>
      writeSafetensors(file, [
        { name: 'a', dtype: 'F32', shape: [1 << 20], data: new Float32Array(1 << 20) }, // written before the failure
        { name: 'b', dtype: 'F32', shape: [4], data: () => { throw new Error('disk source vanished'); } },
      ]),
    ).toThrow('disk source vanished');
    expect(fs.readdirSync(dir)).toEqual(['model.safetensors']);
    expect(fs.readFileSync(file, 'utf8')).toBe('old content');
  });

  it('rejects bad tensors with one line naming the file and tensor, before creating anything', () => {
    const dir = makeTmpDir('atomic-st-bad');
    const file = path.join(dir, 'x.safetensors');
    expect(() => writeSafetensors(file, [{ name: 'w', dtype: 'F32', shape: [2, -1], data: new Float32Array(2) }])).toThrow(
      `${file}: tensor "w": shape [2,-1] must be an array of non-negative integers`,
    );
    expect(() => writeSafetensors(file, [{ name: 'w', dtype: 'Q4' as never, shape: [1], data: new Float32Array(1) }])).toThrow(
      `${file}: tensor "w": unknown dtype "Q4"`,
    );
    expect(() => writeSafetensors(file, [{ name: 'w', dtype: 'I32', shape: [1], data: new Float32Array(1) }])).toThrow(
      `${file}: tensor "w": cannot store F32 data as I32`,
    );
    expect(() => writeSafetensors(file, [{ name: 'w', dtype: 'I16', shape: [1], data: new Uint16Array(1) }])).toThrow(
      'Uint16Array data holds raw F16 / BF16 bits, but the tensor is declared I16',
    );
    expect(() => writeSafetensors(file, [{ name: '__metadata__', dtype: 'U8', shape: [1], data: new Uint8Array(1) }])).toThrow('reserved');
    expect(fs.readdirSync(dir)).toEqual([]);
  });
});

describe('withAtomicDir', () => {
  it('builds in a sibling temp dir and renames it into place', async () => {
    const root = makeTmpDir('atomic-dir');
    const out = path.join(root, 'model');
    let seenTmp = '';
    const result = await withAtomicDir(out, async (tmp) => {
      seenTmp = tmp;
      expect(path.dirname(tmp)).toBe(root);
      expect(fs.existsSync(out)).toBe(false); // nothing visible while building
      fs.writeFileSync(path.join(tmp, 'config.json'), '{}');
      await new Promise((r) => setTimeout(r, 5));
      return 42;
    });
    expect(result).toBe(42);
    expect(fs.readdirSync(out)).toEqual(['config.json']);
    expect(fs.existsSync(seenTmp)).toBe(false);
    expect(fs.readdirSync(root)).toEqual(['model']);
  });

  it('removes the temp dir and leaves the target untouched when the builder throws midway', async () => {
    const root = makeTmpDir('atomic-dir-fail');
    const out = path.join(root, 'model');
    await expect(
      withAtomicDir(out, (tmp) => {
        fs.writeFileSync(path.join(tmp, 'half.bin'), 'partial');
        throw new Error('builder failed');
      }),
    ).rejects.toThrow('builder failed');
    expect(fs.readdirSync(root)).toEqual([]);

    fs.mkdirSync(out);
    fs.writeFileSync(path.join(out, 'keep.txt'), 'old');
    await expect(
      withAtomicDir(out, async (tmp) => {
        fs.writeFileSync(path.join(tmp, 'new.txt'), 'new');
        throw new Error('late failure');
      }, { force: true }),
    ).rejects.toThrow('late failure');
    expect(fs.readdirSync(root)).toEqual(['model']);
    expect(fs.readdirSync(out)).toEqual(['keep.txt']);
  });

  it('refuses a non-empty directory without force, naming it; replaces it with force; reuses an empty one', async () => {
    const root = makeTmpDir('atomic-dir-force');
    const out = path.join(root, 'model');
    fs.mkdirSync(out);
    await withAtomicDir(out, (tmp) => fs.writeFileSync(path.join(tmp, 'a'), '1')); // empty dir: fine
    expect(fs.readdirSync(out)).toEqual(['a']);
    let built = false;
    await expect(withAtomicDir(out, () => { built = true; })).rejects.toThrow(
      `${out}: directory exists and is not empty; refusing to overwrite it without force (--force)`,
    );
    expect(built).toBe(false); // refused before building
    await withAtomicDir(out, (tmp) => fs.writeFileSync(path.join(tmp, 'b'), '2'), { force: true });
    expect(fs.readdirSync(out)).toEqual(['b']);
    expect(fs.readdirSync(root)).toEqual(['model']); // the old copy is gone too
    const file = path.join(root, 'file');
    fs.writeFileSync(file, 'x');
    await expect(withAtomicDir(file, () => undefined, { force: true })).rejects.toThrow(`${file}: exists and is not a directory`);
  });
});
