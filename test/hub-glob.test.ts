/**
 * --include / --exclude select files the way huggingface_hub's allow_patterns / ignore_patterns do: Python's
 * fnmatch on the whole path (`*` crosses `/`), and a trailing `/` for a directory. Checked on fixed cases and
 * against Python's own fnmatch where the venv exists.
 */
import { describe, expect, it } from 'vitest';
import { globToRegExp, matchesGlob, pathFilter } from '../src/hub/glob.js';
import { python5, runPython } from './helpers/python.js';

const files = [
  'config.json',
  'generation_config.json',
  'model-00001-of-00002.safetensors',
  'model-00002-of-00002.safetensors',
  'model.safetensors.index.json',
  'tokenizer.json',
  'tokenizer/vocab.json',
  'a/b/c/deep.json',
  '.gitattributes',
  'README.md',
  'pytorch_model.bin',
  'sub/x.json',
  'weird[1].txt',
  'a+b(1).txt',
];

const pick = (...patterns: string[]): string[] => files.filter(pathFilter(patterns)).sort();

describe('glob (fnmatch semantics, as huggingface_hub)', () => {
  it('`*` crosses directories: *.json matches sub/x.json (item 6)', () => {
    expect(matchesGlob('sub/x.json', '*.json')).toBe(true);
    expect(pick('*.json')).toEqual(
      ['a/b/c/deep.json', 'config.json', 'generation_config.json', 'model.safetensors.index.json', 'sub/x.json', 'tokenizer.json', 'tokenizer/vocab.json'].sort(),
    );
    expect(pick('*.safetensors')).toEqual(['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors']);
    expect(pick('config.json')).toEqual(['config.json']);
    expect(pick('**/*.json')).toEqual(['a/b/c/deep.json', 'sub/x.json', 'tokenizer/vocab.json']); // needs a slash, as in Python
    expect(pick('a/*')).toEqual(['a/b/c/deep.json']);
    expect(pick('tokenizer/')).toEqual(['tokenizer/vocab.json']);
    expect(pick('*')).toEqual([...files].sort());
    expect(pick('model-0000?-of-*.safetensors')).toEqual(['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors']);
    expect(pick('model-0000[!1]-*')).toEqual(['model-00002-of-00002.safetensors']);
    expect(pick('*.{bin,md}')).toEqual([]); // no brace alternatives in fnmatch
    expect(pick('.git*')).toEqual(['.gitattributes']);
    expect(pick('weird[[]1].txt')).toEqual(['weird[1].txt']);
    expect(pick('a+b(1).txt')).toEqual(['a+b(1).txt']);
  });

  it('include and exclude combine', () => {
    expect(files.filter(pathFilter(['*.json'], ['tokenizer*', '*/deep.json', 'sub/'])).sort()).toEqual(
      ['config.json', 'generation_config.json', 'model.safetensors.index.json'].sort(),
    );
    expect(files.filter(pathFilter([], ['*.bin'])).length).toBe(files.length - 1);
  });

  it('an empty pattern is one clear line', () => {
    expect(() => globToRegExp('')).toThrow('glob "": empty pattern');
  });

  const py = python5('hub glob vs fnmatch');
  if (!py.available) console.log(py.skipLine);
  it.skipIf(!py.available)("agrees with Python's fnmatch (and huggingface_hub's trailing-slash rule) on every case", async () => {
    const patterns = ['*.json', '**/*.json', '*', '?', '??*', 'a/*', 'tokenizer/', '[!a-m]*', '[]]*', '[!]]*', '[a-]*', 'weird[1].txt', 'weird[[]1].txt',
      '[', '*[', 'model-0000[!1]-*', '*.{bin,md}', 'a\\b', '*b(1)*', '.git*', '*/', 'a[z-a]', '[^R]*', 'sub/x.json', '*.JSON'];
    const paths = [...files, 'a\\b', '[', ']', 'R', '^x', '-x', 'sub/', 'x.JSON'];
    const code = `import fnmatch, json, sys
pats, paths = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(json.dumps([[fnmatch.fnmatchcase(p, g + '*' if g.endswith('/') else g) for p in paths] for g in pats]))`;
    const { stdout } = await runPython(py, ['-c', code, JSON.stringify(patterns), JSON.stringify(paths)], { timeoutMs: 60_000 });
    const expected = JSON.parse(stdout.trim()) as boolean[][];
    let compared = 0;
    patterns.forEach((g, i) => paths.forEach((p, j) => {
      expect(matchesGlob(p, g), `${JSON.stringify(p)} ~ ${JSON.stringify(g)}`).toBe(expected[i]![j]);
      compared++;
    }));
    expect(compared).toBe(patterns.length * paths.length);
  });
});
