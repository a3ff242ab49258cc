import { describe, expect, it } from 'vitest';
import * as path from 'node:path';
import { globToRegExp, matchesGlob, pathFilter } from '../src/hub/glob.js';

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
];

const pick = (...patterns: string[]): string[] => files.filter(pathFilter(patterns)).sort();

describe('glob', () => {
  it('matches the patterns the CLI documents', () => {
    expect(pick('*.safetensors')).toEqual(['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors']);
    expect(pick('config.json')).toEqual(['config.json']);
    expect(pick('**/*.json')).toEqual(
      ['a/b/c/deep.json', 'config.json', 'generation_config.json', 'model.safetensors.index.json', 'tokenizer.json', 'tokenizer/vocab.json'].sort(),
    );
    expect(pick('*.json')).toEqual(['config.json', 'generation_config.json', 'model.safetensors.index.json', 'tokenizer.json']);
    expect(pick('a/**')).toEqual(['a/b/c/deep.json']);
    expect(pick('a/**/deep.json')).toEqual(['a/b/c/deep.json']);
    expect(pick('*')).toEqual(files.filter((f) => !f.includes('/')).sort());
    expect(pick('model-0000?-of-*.safetensors')).toEqual(['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors']);
    expect(pick('model-0000[!1]-*')).toEqual(['model-00002-of-00002.safetensors']);
    expect(pick('*.{bin,md}')).toEqual(['README.md', 'pytorch_model.bin']);
    expect(pick('.git*')).toEqual(['.gitattributes']);
  });

  it('include and exclude combine', () => {
    expect(files.filter(pathFilter(['**/*.json'], ['tokenizer*', '**/deep.json', 'tokenizer/**'])).sort()).toEqual(
      ['config.json', 'generation_config.json', 'model.safetensors.index.json'].sort(),
    );
    expect(files.filter(pathFilter([], ['*.bin'])).length).toBe(files.length - 1);
  });

  it('escapes regex characters and honours backslash escapes', () => {
    expect(matchesGlob('a+b(1).txt', 'a+b(1).txt')).toBe(true);
    expect(matchesGlob('axb', 'a.b')).toBe(false);
    expect(matchesGlob('a*b', 'a\\*b')).toBe(true);
    expect(matchesGlob('axxb', 'a\\*b')).toBe(false);
  });

  it('agrees with node path.matchesGlob where both apply', () => {
    const nodeMatch = (path as unknown as { matchesGlob?: (p: string, g: string) => boolean }).matchesGlob;
    if (nodeMatch === undefined) return; // older Node 20: nothing to compare with
    const patterns = ['*.safetensors', '**/*.json', 'config.json', 'a/**', 'tokenizer/*', 'model-0000?-of-*.safetensors', '*.{bin,md}'];
    for (const g of patterns) {
      for (const f of files.filter((x) => !x.startsWith('.'))) expect(matchesGlob(f, g), `${f} ~ ${g}`).toBe(nodeMatch(f, g));
    }
  });

  it('bad patterns are one clear line', () => {
    expect(() => globToRegExp('')).toThrow('glob "": empty pattern');
    expect(() => globToRegExp('a**b')).toThrow('glob "a**b": "**" must be a whole path segment');
    expect(() => globToRegExp('[abc')).toThrow('unclosed "["');
    expect(() => globToRegExp('{a,b')).toThrow('unclosed "{"');
    expect(() => globToRegExp('{a,{b}}')).toThrow('nested');
  });
});
