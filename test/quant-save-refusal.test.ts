/** saveModel must refuse a model with 4-bit layers instead of silently dropping their weights. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { saveModel } from '../src/models/save.js';
import { quantizeModel } from '../src/quant/index.js';
import { makeTmpDir } from './helpers/tmpdir.js';
import { tinyMixtralConfig, tinyModel } from './helpers/tiny-model.js';

describe('saveModel and 4-bit layers', () => {
  it('refuses with one line naming the module, and writes nothing', async () => {
    const model = tinyModel(tinyMixtralConfig({ hidden_size: 64, intermediate_size: 64 }));
    quantizeModel(model, {});
    const out = path.join(makeTmpDir('save-q'), 'model');
    await expect(saveModel(model, out)).rejects.toThrow(/module 'model\.layers\.0\.[a-z_.0-9]+' holds 4-bit weights.*saveQuantizedModel/);
    expect(fs.existsSync(out)).toBe(false);
  });
});
