import { describe, expect, it } from 'vitest';
import {
  bf16ArrayToFloat32,
  bf16ToFloat32,
  decodeFloatBytes,
  decodeIntBytes,
  dtypeByteSize,
  encodeFloatBytes,
  f16ArrayToFloat32,
  f16ToFloat32,
  float32ArrayToBf16,
  float32ArrayToF16,
  float32ToBf16,
  float32ToF16,
  STORAGE_DTYPES,
} from '../src/io/dtype.js';

/** float32 value with the given bit pattern. */
function f32(bits: number): number {
  return new Float32Array(new Uint32Array([bits]).buffer)[0]!;
}

describe('byte sizes', () => {
  it('match the format', () => {
    expect(Object.fromEntries(STORAGE_DTYPES.map((d) => [d, dtypeByteSize(d)]))).toEqual({
      F64: 8, F32: 4, F16: 2, BF16: 2, F8_E4M3: 1, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1,
    });
  });
});

describe('bf16', () => {
  it('rounds float32 to nearest, ties to even (hand-computed bit patterns)', () => {
    const cases: [number, number][] = [
      [0x3f800000, 0x3f80], // 1.0
      [0x3f808000, 0x3f80], // 1 + 2^-8: tie, 0x3f80 is even
      [0x3f818000, 0x3f82], // tie between 0x3f81 (odd) and 0x3f82
      [0x3f808001, 0x3f81], // just above the tie
      [0x3f807fff, 0x3f80], // just below the tie
      [0xbfc00000, 0xbfc0], // -1.5
      [0x80000000, 0x8000], // -0
      [0x7f7fffff, 0x7f80], // largest float32 rounds up to inf
      [0xff800000, 0xff80], // -inf
      [0x00000001, 0x0000], // smallest subnormal rounds to 0
      [0x00008000, 0x0000], // subnormal tie to even (0)
      [0x00018000, 0x0002], // subnormal tie to even (2)
      [0x0000c000, 0x0001], // subnormal above the tie
      [0x7fc00000, 0x7fc0], // NaN
      [0xffc12345, 0x7fc0], // negative NaN with payload: torch's scalar path gives 0x7fc0
    ];
    for (const [inBits, want] of cases) expect([inBits, float32ToBf16(f32(inBits))]).toEqual([inBits, want]);
    const arr = new Float32Array(new Uint32Array(cases.map((c) => c[0])).buffer);
    const out = new Uint16Array(arr.length);
    float32ArrayToBf16(arr, out);
    expect([...out]).toEqual(cases.map((c) => c[1]));
  });

  it('upcasts exactly, subnormals, infinities and NaN payloads included', () => {
    expect(bf16ToFloat32(0x3f80)).toBe(1);
    expect(bf16ToFloat32(0xc0a0)).toBe(-5);
    expect(bf16ToFloat32(0x0001)).toBe(2 ** -133);
    expect(bf16ToFloat32(0x7f7f)).toBe(f32(0x7f7f0000));
    expect(bf16ToFloat32(0x7f80)).toBe(Infinity);
    expect(bf16ToFloat32(0xff80)).toBe(-Infinity);
    expect(Object.is(bf16ToFloat32(0x8000), -0)).toBe(true);
    const out = new Float32Array(2);
    bf16ArrayToFloat32(new Uint16Array([0x7fc1, 0xffa0]), out);
    expect([...new Uint32Array(out.buffer)]).toEqual([0x7fc10000, 0xffa00000]);
  });

  it('agrees with nearest-neighbour rounding on random float32 values', () => {
    let seed = 12345;
    const next = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0), seed);
    const n = 100_000;
    const bits = new Uint32Array(n);
    for (let i = 0; i < n; i++) bits[i] = (next() & 0x7fffffff) % 0x7f000000 | (next() & 0x80000000);
    const src = new Float32Array(bits.buffer);
    const out = new Uint16Array(n);
    float32ArrayToBf16(src, out);
    for (let i = 0; i < n; i++) {
      const x = src[i]!;
      const lo = f32(bits[i]! & 0xffff0000);
      const hi = f32(((bits[i]! & 0xffff0000) + 0x10000) >>> 0);
      const dLo = Math.abs(x - lo);
      const dHi = Math.abs(hi - x);
      const loBits = (bits[i]! >>> 16) & 0xffff;
      const want = dLo < dHi || (dLo === dHi && (loBits & 1) === 0) ? loBits : loBits + 1;
      if (out[i] !== want) expect([x, out[i]]).toEqual([x, want]);
    }
  });
});

describe('f16', () => {
  it('rounds float32 to nearest, ties to even (hand-computed)', () => {
    const cases: [number, number][] = [
      [1, 0x3c00],
      [-2, 0xc000],
      [65504, 0x7bff], // largest f16
      [f32(0x477fefff), 0x7bff], // just below 65520
      [65520, 0x7c00], // halfway to 65536: ties to even, which is inf
      [-65520, 0xfc00],
      [1e6, 0x7c00],
      [Infinity, 0x7c00],
      [-Infinity, 0xfc00],
      [2 ** -14, 0x0400], // smallest normal
      [1023 * 2 ** -24, 0x03ff], // largest subnormal
      [1023.5 * 2 ** -24, 0x0400], // tie between 0x03ff (odd) and 0x0400
      [2 ** -24, 0x0001], // smallest subnormal
      [2 ** -25, 0x0000], // tie between 0 and 0x0001: even
      [2 ** -25 + 2 ** -40, 0x0001],
      [1.5 * 2 ** -24, 0x0002], // tie between 1 and 2 -> 2
      [2.5 * 2 ** -24, 0x0002], // tie between 2 and 3 -> 2
      [2 ** -26, 0x0000],
      [1e-8, 0x0000],
      [-(2 ** -24), 0x8001],
      [-0, 0x8000],
      [1 + 2 ** -11, 0x3c00], // tie between 0x3c00 and 0x3c01
      [1 + 3 * 2 ** -11, 0x3c02], // tie between 0x3c01 and 0x3c02
      [1 + 2 ** -11 + 2 ** -20, 0x3c01],
      [2049, 0x6800], // spacing 2 at 2048: tie -> 2048
      [2051, 0x6802], // tie -> 2052
      [0.1, 0x2e66],
      [NaN, 0x7e00],
      [f32(0xffc00001), 0xfe00], // negative NaN keeps its sign
    ];
    for (const [x, want] of cases) expect([x, float32ToF16(x)]).toEqual([x, want]);
    const src = new Float32Array(cases.map((c) => c[0]));
    const out = new Uint16Array(src.length);
    float32ArrayToF16(src, out);
    expect([...out]).toEqual(cases.map((c) => c[1]));
  });

  it('upcasts every one of the 65536 bit patterns exactly (against the IEEE formula)', () => {
    const all = new Uint16Array(65536);
    for (let h = 0; h < 65536; h++) all[h] = h;
    const out = new Float32Array(65536);
    f16ArrayToFloat32(all, out);
    for (let h = 0; h < 65536; h++) {
      const sign = h & 0x8000 ? -1 : 1;
      const e = (h >>> 10) & 0x1f;
      const m = h & 0x3ff;
      const want = e === 0x1f ? (m === 0 ? sign * Infinity : NaN) : e === 0 ? sign * m * 2 ** -24 : sign * 2 ** (e - 15) * (1 + m / 1024);
      if (!Object.is(out[h], want)) expect([h, out[h]]).toEqual([h, want]);
      if (f16ToFloat32(h) !== out[h] && !Number.isNaN(want)) expect([h, f16ToFloat32(h)]).toEqual([h, out[h]]);
    }
    // NaN payload is kept: f16 0x7e01 -> quiet bit and payload shifted by 13.
    expect(new Uint32Array(out.buffer)[0x7e01]).toBe(0x7fc02000);
  });

  it('round-trips every finite f16, and rounds random float32 to the nearest f16', () => {
    const all = new Uint16Array(0x7c00);
    for (let h = 0; h < 0x7c00; h++) all[h] = h;
    const values = new Float32Array(all.length);
    f16ArrayToFloat32(all, values);
    const back = new Uint16Array(all.length);
    float32ArrayToF16(values, back);
    expect(back).toEqual(all);
    // Independent reference: binary search among the sorted positive f16 values, ties to the even pattern.
    let seed = 99;
    const rand = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0), seed / 2 ** 32);
    for (let i = 0; i < 50_000; i++) {
      const x = Math.fround((rand() < 0.5 ? -1 : 1) * 2 ** (rand() * 44 - 28));
      const ax = Math.abs(x);
      let want: number;
      if (ax >= 65520) want = 0x7c00;
      else {
        let lo = 0;
        let hi = 0x7bff;
        while (hi - lo > 1) {
          const mid = (lo + hi) >> 1;
          if (values[mid]! <= ax) lo = mid;
          else hi = mid;
        }
        if (values[hi]! <= ax) lo = hi;
        const up = Math.min(lo + 1, 0x7c00);
        const upValue = up === 0x7c00 ? 65536 : values[up]!;
        const dLo = ax - values[lo]!;
        const dUp = upValue - ax;
        want = dLo < dUp || (dLo === dUp && (lo & 1) === 0) ? lo : up;
      }
      if (x < 0) want |= 0x8000;
      const got = float32ToF16(x);
      if (got !== want) expect([x, got]).toEqual([x, want]);
    }
  });
});

describe('byte codecs', () => {
  it('f64 bytes round to nearest even float32', () => {
    const src = new Float64Array([1 + 2 ** -24, 1 + 3 * 2 ** -24, 0.1, -1e300, 1e-50]);
    const out = new Float32Array(src.length);
    decodeFloatBytes('F64', new Uint8Array(src.buffer), out);
    expect([...out]).toEqual([1, 1 + 2 ** -22, Math.fround(0.1), -Infinity, 0]);
  });

  it('decodes and encodes every float dtype consistently, from unaligned bytes too', () => {
    const values = new Float32Array([0, -0.5, 1.25, -3, 65504, 2 ** -24]);
    for (const dtype of ['F64', 'F32', 'F16', 'BF16'] as const) {
      const size = dtypeByteSize(dtype);
      const backing = new Uint8Array(values.length * size + 1);
      const bytes = backing.subarray(1); // odd offset: forces the unaligned path
      encodeFloatBytes(dtype, values, bytes);
      const out = new Float32Array(values.length);
      decodeFloatBytes(dtype, bytes, out);
      const expected = dtype === 'BF16' ? [0, -0.5, 1.25, -3, 65536, 2 ** -24] : [...values];
      expect([dtype, ...out]).toEqual([dtype, ...expected]);
    }
  });

  it('integers widen to int32; I64 outside int32 is reported by index', () => {
    const i64 = new BigInt64Array([-1n, 2147483647n, -2147483648n, 5n]);
    const out = new Int32Array(4);
    expect(decodeIntBytes('I64', new Uint8Array(i64.buffer), out)).toBe(-1);
    expect([...out]).toEqual([-1, 2147483647, -2147483648, 5]);
    expect(decodeIntBytes('I64', new Uint8Array(new BigInt64Array([0n, 2147483648n]).buffer), new Int32Array(2))).toBe(1);
    expect(decodeIntBytes('I64', new Uint8Array(new BigInt64Array([-2147483649n]).buffer), new Int32Array(1))).toBe(0);
    const cases = [
      ['I16', new Uint8Array(new Int16Array([-300, 300]).buffer), [-300, 300]],
      ['I8', new Uint8Array(new Int8Array([-128, 127]).buffer), [-128, 127]],
      ['U8', new Uint8Array([0, 255]), [0, 255]],
      ['BOOL', new Uint8Array([0, 1]), [0, 1]],
      ['I32', new Uint8Array(new Int32Array([-5, 1 << 30]).buffer), [-5, 1 << 30]],
    ] as const;
    for (const [dtype, bytes, want] of cases) {
      const o = new Int32Array(2);
      decodeIntBytes(dtype, bytes, o);
      expect([dtype, ...o]).toEqual([dtype, ...want]);
    }
  });

  it('converts 4M bf16 and f16 elements fast (typed-array loops)', () => {
    const n = 1 << 22;
    const src = new Uint16Array(n);
    for (let i = 0; i < n; i++) src[i] = (i * 2654435761) & 0x7bff;
    const out = new Float32Array(n);
    const t0 = performance.now();
    bf16ArrayToFloat32(src, out);
    f16ArrayToFloat32(src, out);
    const back = new Uint16Array(n);
    float32ArrayToBf16(out, back);
    float32ArrayToF16(out, back);
    const ms = performance.now() - t0;
    let mismatches = 0;
    for (let i = 0; i < n; i++) if (back[i] !== src[i]) mismatches++;
    expect(mismatches).toBe(0); // f16 -> f32 -> f16 is the identity on finite values
    expect(ms).toBeLessThan(2000); // tens of ms here; a per-element DataView or Math path would be far slower
  });
});
