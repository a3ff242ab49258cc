import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { listHfFiles, readHfConfig } from '../src/io/hf-dir.js';
import { makeTmpDir } from './helpers/tmpdir.js';

import { FIXTURES } from './helpers/fixtures.js';

describe('readHfConfig', () => {
  it('reads the fixtures config.json unvalidated', () => {
    const llama = readHfConfig(path.join(FIXTURES, 'tiny-llama'));
    expect(llama['architectures']).toEqual(['LlamaForCausalLM']);
    expect(llama['hidden_size']).toBe(64);
    expect(llama['tie_word_embeddings']).toBe(true);
    const mixtral = readHfConfig(path.join(FIXTURES, 'tiny-mixtral'));
    expect(mixtral['model_type']).toBe('mixtral');
  });

  it('errors name the path: missing dir, not a dir, missing / invalid / non-object config.json', () => {
    const root = makeTmpDir('hf-dir');
    const missing = path.join(root, 'nope');
    expect(() => readHfConfig(missing)).toThrow(`${missing}: model directory not found`);
    const file = path.join(root, 'file');
    fs.writeFileSync(file, '');
    expect(() => readHfConfig(file)).toThrow(`${file}: not a directory`);
    const dir = path.join(root, 'm');
    fs.mkdirSync(dir);
    const config = path.join(dir, 'config.json');
    expect(() => readHfConfig(dir)).toThrow(`${config}: not found (a Hugging Face model directory needs config.json)`);
    fs.writeFileSync(config, '{"hidden_size": 64,');
    expect(() => readHfConfig(dir)).toThrow(new RegExp(`^${config.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: invalid JSON: `));
    fs.writeFileSync(config, '[1]');
    expect(() => readHfConfig(dir)).toThrow(`${config}: expected a JSON object, got an array`);
  });
});

describe('listHfFiles', () => {
  it('reports which optional files exist', () => {
    const dir = makeTmpDir('hf-list');
    fs.writeFileSync(path.join(dir, 'config.json'), '{}');
    fs.writeFileSync(path.join(dir, 'tokenizer.json'), '{}');
    fs.writeFileSync(path.join(dir, 'special_tokens_map.json'), '{}');
    const files = listHfFiles(dir);
    expect(files).toEqual({
      dir,
      config: path.join(dir, 'config.json'),
      generationConfig: null,
      tokenizer: path.join(dir, 'tokenizer.json'),
      tokenizerConfig: null,
      specialTokensMap: path.join(dir, 'special_tokens_map.json'),
      singleWeights: null,
      weightsIndex: null,
    });
    const fixture = listHfFiles(path.join(FIXTURES, 'tiny-llama'));
    expect(fixture.weightsIndex).toBe(path.join(FIXTURES, 'tiny-llama', 'model.safetensors.index.json'));
    expect(fixture.tokenizer).toBeNull();
  });
});
