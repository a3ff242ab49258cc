/**
 * The native loading kernels (native/src/weight_load.cc) against the TypeScript references, bit for
 * bit: bf16 / f16 / f32 decoding (from a file, through SafetensorsFile.readFloat32Into), NF4
 * quantisation from memory and straight from a file's bytes (quantizeNf4Stored vs quantizeNf4Js on
 * the decoded values), double quantisation of the scales (quantizeScales vs quantizeScalesJs), and
 * a whole model loaded 4-bit with either backend. Sizes cover partial blocks, odd counts, all-zero
 * blocks, block sizes 2 / 64 / 256, and tensors of several 2^18-element chunks (so several pool
 * tasks read and quantise their own chunk).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SafetensorsFile, writeSafetensors, f16ToFloat32, bf16ToFloat32 } from '../src/io/index.js';
import {
  loadModelQuantized, nf4Sites, NF4_THRESHOLDS, quantizeNf4, quantizeNf4Js, quantizeNf4Stored, quantizeScales, quantizeScalesJs,
  type Nf4Weight,
} from '../src/quant/index.js';
import { nativeAddonPath } from '../src/tensor/backends/native/index.js';
import { Rng, setBackend } from '../src/tensor/index.js';
import { makeTmpDir } from './helpers/tmpdir.js';
import { FIXTURES } from './helpers/fixtures.js';

const built = fs.existsSync(nativeAddonPath());
if (!built) console.warn(`native-weight-load.test: SKIPPED, the addon is not built (${nativeAddonPath()} is missing)`);

afterAll(() => {
  setBackend('auto');
});

function gaussian(n: number, rng: Rng, std = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal() * std;
  return a;
}

/** Random finite bf16 / f16 bit patterns over many exponents (subnormals included). */
function randomHalfBits(n: number, rng: Rng, kind: 'BF16' | 'F16'): Uint16Array {
  const out = new Uint16Array(n);
  for (let i = 0; i < n; i++) {
    let h: number;
    do h = rng.nextU32() & 0xffff;
    while (kind === 'BF16' ? (h & 0x7f80) === 0x7f80 : (h & 0x7c00) === 0x7c00);
    out[i] = h;
  }
  return out;
}

function expectSameNf4(a: Nf4Weight, b: Nf4Weight): void {
  expect(a.shape).toEqual(b.shape);
  expect(a.blockSize).toBe(b.blockSize);
  expect(Buffer.from(a.codes).equals(Buffer.from(b.codes))).toBe(true);
  if (a.absmax || b.absmax) expect(Buffer.from(a.absmax!.buffer, a.absmax!.byteOffset, a.absmax!.byteLength).equals(Buffer.from(b.absmax!.buffer, b.absmax!.byteOffset, b.absmax!.byteLength))).toBe(true);
  if (a.nested || b.nested) {
    expect(Object.is(a.nested!.offset, b.nested!.offset)).toBe(true);
    expect(Buffer.from(a.nested!.qabsmax).equals(Buffer.from(b.nested!.qabsmax))).toBe(true);
    expect(Array.from(a.nested!.nestedAbsmax)).toEqual(Array.from(b.nested!.nestedAbsmax));
  }
}

const SIZES: [number, number][] = [[1, 2], [1, 1], [3, 7], [5, 64], [7, 65], [33, 130], [64, 1000], [513, 1031]];

describe.skipIf(!built)('native NF4 quantisation equals the TypeScript reference bit for bit', () => {
  it('the native backend has the loading kernels', () => {
    const b = setBackend('native');
    expect(typeof b.nf4QuantizeStored).toBe('function');
    expect(typeof b.nf4QuantizeScales).toBe('function');
    expect(typeof b.decodeStored).toBe('function');
  });

  // every NF4 block kernel this build has (AVX-512, AVX2, portable), each against the reference
  const isaInfo = built ? (setBackend('native').nf4QuantizeIsa?.(null) ?? 'portable;portable') : 'portable;portable';
  const best = isaInfo.split(';')[0]!;
  const isas = isaInfo.split(';')[1]!.split(',');
  afterAll(() => {
    if (built) setBackend('native').nf4QuantizeIsa?.(best);
  });

  it('lists its NF4 kernels, the portable one always, and selects each', () => {
    const b = setBackend('native');
    expect(isas).toContain('portable');
    for (const isa of isas) expect(b.nf4QuantizeIsa!(isa).split(';')[0]).toBe(isa);
    b.nf4QuantizeIsa!(best);
    expect(() => b.nf4QuantizeIsa!('sse9')).toThrow(/unknown kernel 'sse9'/);
  });

  for (const isa of isas) {
    it(`kernel ${isa}: float32, bf16 and f16 values, blocks 2 / 16 / 64 / 256, partial and zero blocks: identical to the reference`, () => {
      const b = setBackend('native');
      b.nf4QuantizeIsa!(isa);
      try {
        for (const blockSize of [2, 16, 64, 256]) {
          for (const [r, c] of SIZES) {
            const rng = new Rng(r * 7919 + c + blockSize);
            const w = gaussian(r * c, rng, 0.02);
            for (let i = 0; i < Math.min(blockSize, w.length); i++) w[i] = 0;
            // exact threshold values (ties go to the lower code) in a block whose max is 1
            if (w.length > 3 * blockSize) {
              for (let i = 2 * blockSize; i < 3 * blockSize; i++) w[i] = (NF4_THRESHOLDS[i % 15]!);
              w[2 * blockSize] = 1;
            }
            expectSameNf4(quantizeNf4(w, [r, c], { blockSize, doubleQuant: false }), quantizeNf4Js(w, [r, c], { blockSize, doubleQuant: false }));
          }
        }
        for (const kind of ['BF16', 'F16'] as const) {
          const bits = randomHalfBits(96 * 64 + 32, new Rng(isa.length), kind);
          const decoded = Float32Array.from(bits, (h) => (kind === 'BF16' ? bf16ToFloat32(h) : f16ToFloat32(h)));
          expectSameNf4(quantizeNf4Stored({ dtype: kind, bytes: new Uint8Array(bits.buffer) }, [bits.length], {})!, quantizeNf4Js(decoded, [bits.length]));
        }
        const bad = gaussian(1024, new Rng(2));
        bad[517] = -Infinity;
        expect(quantizeNf4Stored({ dtype: 'F32', bytes: new Uint8Array(bad.buffer) }, [1024], {})).toBeNull();
      } finally {
        b.nf4QuantizeIsa!(best);
      }
    });
  }

  for (const doubleQuant of [true, false]) {
    for (const blockSize of [2, 64, 256]) {
      it(`float32 in memory, block ${blockSize}, doubleQuant ${doubleQuant}: codes, scales and nested scales identical`, () => {
        setBackend('native');
        for (const [r, c] of SIZES) {
          const rng = new Rng(r * 7919 + c + blockSize);
          const w = gaussian(r * c, rng, 0.02);
          // an all-zero block, a block of one repeated value, exact threshold midpoints
          for (let i = 0; i < Math.min(blockSize, w.length); i++) w[i] = 0;
          if (w.length > 3 * blockSize) for (let i = 2 * blockSize; i < 3 * blockSize; i++) w[i] = -0.5;
          const q = quantizeNf4(w, [r, c], { doubleQuant, blockSize });
          const ref = quantizeNf4Js(w, [r, c], { doubleQuant, blockSize });
          expectSameNf4(q, ref);
        }
      });
    }
  }

  it('a 1.5M-value tensor (several 2^18 chunks, every pool thread) and its 23K scales', () => {
    setBackend('native');
    const rng = new Rng(5);
    const w = gaussian(1536 * 1000, rng, 0.05);
    expectSameNf4(quantizeNf4(w, [1536, 1000]), quantizeNf4Js(w, [1536, 1000]));
    const absmax = new Float32Array(23_456);
    for (let i = 0; i < absmax.length; i++) absmax[i] = Math.abs(rng.normal()) * 0.1 + (i % 300 === 0 ? 0 : 1e-3);
    const a = quantizeScales(absmax, 256);
    const b = quantizeScalesJs(absmax, 256);
    expect(Object.is(a.offset, b.offset)).toBe(true);
    expect(Buffer.from(a.qabsmax).equals(Buffer.from(b.qabsmax))).toBe(true);
    expect(Array.from(a.nestedAbsmax)).toEqual(Array.from(b.nestedAbsmax));
  });

  for (const kind of ['BF16', 'F16'] as const) {
    it(`${kind} bytes in memory: quantised without a float copy, equal to the reference on the decoded values`, () => {
      setBackend('native');
      const rng = new Rng(kind === 'BF16' ? 11 : 12);
      const bits = randomHalfBits(77 * 129, rng, kind);
      const decoded = Float32Array.from(bits, (h) => (kind === 'BF16' ? bf16ToFloat32(h) : f16ToFloat32(h)));
      const q = quantizeNf4Stored({ dtype: kind, bytes: new Uint8Array(bits.buffer) }, [77, 129], { sourceDtype: kind });
      expect(q).not.toBeNull();
      expectSameNf4(q!, quantizeNf4Js(decoded, [77, 129]));
    });
  }

  it('a NaN or an infinity gives the reference error (native finds the block, the reference words it)', () => {
    setBackend('native');
    const w = gaussian(640, new Rng(3));
    w[300] = NaN;
    expect(() => quantizeNf4(w, [10, 64], { name: 'layer.w1' })).toThrow('quantizeNf4 layer.w1: value 300 is NaN');
    w[300] = Infinity;
    expect(() => quantizeNf4(w, [10, 64], { name: 'layer.w1' })).toThrow('quantizeNf4 layer.w1: value in block 4 is not finite');
  });
});

describe.skipIf(!built)('native loading from safetensors files equals the js path', () => {
  const dir = makeTmpDir('native-weight-load');
  const file = path.join(dir, 'w.safetensors');
  const rng = new Rng(21);
  const n = 300_001; // two chunks and a bit, odd
  const bf = randomHalfBits(n, rng, 'BF16');
  const f16 = randomHalfBits(n, rng, 'F16');
  // specials: NaN payloads (signalling too), infinities, signed zeros, subnormals
  const specials = [0x7c01, 0x7e00, 0xfc00, 0x7c00, 0x8000, 0x0000, 0x0001, 0x83ff, 0x7bff];
  specials.forEach((h, i) => { f16[n - 1 - i] = h; });
  const bfSpecials = [0x7f81, 0x7fc0, 0xff80, 0x7f80, 0x8000, 0x0001];
  bfSpecials.forEach((h, i) => { bf[n - 1 - i] = h; });
  const f32 = gaussian(n, rng);
  writeSafetensors(file, [
    { name: 'a.bf16', dtype: 'BF16', shape: [n], data: bf },
    { name: 'b.f16', dtype: 'F16', shape: [n], data: f16 },
    { name: 'c.f32', dtype: 'F32', shape: [n], data: f32 },
    { name: 'd.bf16', dtype: 'BF16', shape: [3, 1000], data: bf.subarray(0, 3000) },
  ]);

  for (const name of ['a.bf16', 'b.f16', 'c.f32']) {
    it(`${name}: readFloat32Into gives the same bits natively (pread, threaded) and in js`, () => {
      const st = SafetensorsFile.open(file);
      try {
        setBackend('native');
        const a = new Float32Array(n);
        st.readFloat32Into(name, a);
        setBackend('js');
        const b = new Float32Array(n);
        st.readFloat32Into(name, b);
        expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).toBe(true);
      } finally {
        st.close();
      }
    });
  }

  it('quantising straight from the file equals reading to float32 and quantising in js', () => {
    const st = SafetensorsFile.open(file);
    try {
      setBackend('native');
      const loc = st.storedLocation('d.bf16')!;
      expect(loc).toMatchObject({ dtype: 'BF16', numel: 3000 });
      const q = quantizeNf4Stored(loc, [3, 1000], { doubleQuant: true });
      setBackend('js');
      const ref = quantizeNf4Js(st.readFloat32('d.bf16'), [3, 1000], { doubleQuant: true });
      expectSameNf4(q!, ref);
      // NaN / inf in the stored values: null (the caller words the error on the reference path)
      setBackend('native');
      expect(quantizeNf4Stored(st.storedLocation('a.bf16')!, [n], {})).toBeNull();
    } finally {
      st.close();
    }
  });

  it('a model loaded 4-bit with the native kernels equals the one loaded with the js backend', () => {
    const dir2 = path.join(FIXTURES, 'tiny-mixtral');
    setBackend('native');
    const a = loadModelQuantized(dir2);
    setBackend('js');
    const b = loadModelQuantized(dir2);
    setBackend('auto');
    const sa = nf4Sites(a.model);
    const sb = nf4Sites(b.model);
    expect(sa.length).toBeGreaterThan(0);
    expect(sa.map((s) => s.path)).toEqual(sb.map((s) => s.path));
    for (let i = 0; i < sa.length; i++) expectSameNf4(sa[i]!.layer.qweight, sb[i]!.layer.qweight);
    const pa = [...a.model.namedParameters()];
    const pb = new Map(b.model.namedParameters());
    for (const [name, t] of pa) expect(Buffer.from((t.f as Float32Array).buffer, (t.f as Float32Array).byteOffset, t.size * 4).equals(Buffer.from((pb.get(name)!.f as Float32Array).buffer, (pb.get(name)!.f as Float32Array).byteOffset, t.size * 4))).toBe(true);
  });
});
