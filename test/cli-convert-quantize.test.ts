/**
 * `moe-tune convert quantize`: a float checkpoint -> a 4-bit NF4 model directory. The written model
 * reloads (read straight into the packed buffers) to exactly the weights of quantising while
 * loading, computes the same logits, keeps the float parameters in the asked dtype, carries the
 * tokenizer, and the command refuses a model that is already 4-bit.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { openCheckpoint } from '../src/io/index.js';
import { loadModelQuantized, nf4Sites } from '../src/quant/index.js';
import { expectOneErrorLine, runCli, runCliJson } from './helpers/cli.js';
import { logits } from './helpers/compare.js';
import { FIXTURES, fixtureBatch } from './helpers/fixtures.js';
import { makeTmpDir } from './helpers/tmpdir.js';

const MIXTRAL = path.join(FIXTURES, 'tiny-mixtral');

describe('moe-tune convert quantize', () => {
  const dir = makeTmpDir('convert-quantize');
  const out = path.join(dir, 'nf4');

  it('writes an NF4 model that reloads bit for bit and computes what quantise-while-loading computes', () => {
    const r = runCliJson<{ quantized: number; floatDtype: string; doubleQuant: boolean; quantizedBytes: number; quantizedParams: number }>(
      ['convert', 'quantize', '--model', MIXTRAL, '--out', out, '--json', '--backend', 'native']);
    expect(r.doubleQuant).toBe(true);
    expect(r.quantized).toBe(2 * 4 + 2 * 4 * 3 - 2 * 0); // q/k/v/o + 4 experts x 3, two layers
    expect(r.quantizedBytes / r.quantizedParams).toBeLessThan(0.53);
    const direct = loadModelQuantized(MIXTRAL);
    const saved = loadModelQuantized(out);
    expect(saved.source).toBe('nf4');
    const a = nf4Sites(direct.model);
    const b = nf4Sites(saved.model);
    expect(b.map((s) => s.path)).toEqual(a.map((s) => s.path));
    for (let i = 0; i < a.length; i++) {
      expect(Buffer.from(b[i]!.layer.qweight.codes).equals(Buffer.from(a[i]!.layer.qweight.codes))).toBe(true);
      expect(Buffer.from(b[i]!.layer.qweight.nested!.qabsmax).equals(Buffer.from(a[i]!.layer.qweight.nested!.qabsmax))).toBe(true);
    }
    const seq = fixtureBatch(12);
    expect(logits(saved.model, seq)).toEqual(logits(direct.model, seq));
  });

  it('stores the float parameters in the source dtype by default, or --dtype', () => {
    const src = openCheckpoint(MIXTRAL);
    const srcDtype = src.dtypeOf('model.norm.weight');
    src.close();
    const ck = openCheckpoint(out);
    expect(ck.dtypeOf('model.norm.weight')).toBe(srcDtype);
    expect(ck.dtypeOf('model.layers.0.self_attn.q_proj.weight')).toBe('U8');
    ck.close();
    const out16 = path.join(dir, 'nf4-bf16');
    runCliJson(['convert', 'quantize', '--model', MIXTRAL, '--out', out16, '--dtype', 'bf16', '--no-double-quant', '--json']);
    const c16 = openCheckpoint(out16);
    expect(c16.dtypeOf('model.norm.weight')).toBe('BF16');
    expect(c16.dtypeOf('model.layers.0.self_attn.q_proj.weight.absmax')).toBe('F32');
    c16.close();
  });

  it('refuses a 4-bit source, a bad --dtype and a non-empty --out, with one line', () => {
    expect(expectOneErrorLine(runCli(['convert', 'quantize', '--model', out, '--out', path.join(dir, 'again')]))).toMatch(/already a 4-bit model/);
    expect(expectOneErrorLine(runCli(['convert', 'quantize', '--model', MIXTRAL, '--out', path.join(dir, 'x'), '--dtype', 'int8']))).toMatch(/--dtype 'int8': expected one of f32, bf16, f16$/);
    expect(expectOneErrorLine(runCli(['convert', 'quantize', '--model', MIXTRAL, '--out', out]))).toMatch(/exists and is not empty/);
    expect(fs.existsSync(path.join(dir, 'again'))).toBe(false);
  });
});
