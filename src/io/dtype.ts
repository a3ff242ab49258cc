/**
 * Storage dtypes of safetensors files (the on-disk element types, spelled as the format spells them) and the
 * conversions between them and the engine's Float32Array / Int32Array.
 *
 * Conventions:
 * - All multi-byte data is little-endian (the format's byte order); the host must be little-endian too, since the
 *   conversions use typed-array views over the file bytes (`requireLittleEndianHost` says so in one line).
 * - Upcasts bf16 -> f32 and f16 -> f32 are exact (NaN payloads kept); f64 -> f32 rounds to nearest even.
 * - Downcasts f32 -> bf16 / f16 round to nearest, ties to even, like torch's `tensor.to(dtype)`; overflow gives
 *   +-inf, and NaN becomes torch's scalar-path NaN: 0x7FC0 for bf16 (sign dropped), sign | 0x7E00 for f16.
 * - Integers convert to Int32Array only where every value fits: an I64 value outside int32 is an error.
 * - F8_E4M3 (float8_e4m3fn: 4 exponent bits, bias 7, 3 mantissa bits, no infinities, S.1111.111 is NaN) is read
 *   only (fine-grained FP8 checkpoints, e.g. DeepSeek-V3's; the block scales are applied by fp8-blocks.ts); every
 *   value is exact in f32. We never write it.
 */

/** Storage dtypes moe-tune reads and writes. */
export const STORAGE_DTYPES = ['F64', 'F32', 'F16', 'BF16', 'F8_E4M3', 'I64', 'I32', 'I16', 'I8', 'U8', 'BOOL'] as const;
export type StorageDtype = (typeof STORAGE_DTYPES)[number];
/** Float dtypes moe-tune reads and writes. */
export type FloatStorageDtype = 'F64' | 'F32' | 'F16' | 'BF16';
/** Float dtypes moe-tune reads into float32 (the written ones and F8_E4M3). */
export type ReadFloatDtype = FloatStorageDtype | 'F8_E4M3';
export type IntStorageDtype = 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

/**
 * Dtypes the safetensors format defines that moe-tune does not handle; a file holding one gets a
 * "not supported" error rather than "unknown".
 */
export const UNSUPPORTED_FORMAT_DTYPES: readonly string[] = [
  'U16', 'U32', 'U64', 'C64', 'F8_E5M2', 'F8_E8M0', 'F8_E4M3FNUZ', 'F8_E5M2FNUZ', 'F4', 'F6_E2M3', 'F6_E3M2',
];

const BYTE_SIZE: Record<StorageDtype, number> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, F8_E4M3: 1, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1,
};

/**
 * Position of each dtype in the reference implementation's `Dtype` enum (declared by increasing alignment). Its
 * writer lays tensors out by this rank, largest first, then by name.
 */
const REFERENCE_ORDER_RANK: Record<StorageDtype, number> = {
  BOOL: 0, U8: 1, I8: 2, F8_E4M3: 2.5, I16: 3, F16: 4, BF16: 5, I32: 6, F32: 7, F64: 8, I64: 9,
};

export function isStorageDtype(x: unknown): x is StorageDtype {
  return typeof x === 'string' && Object.prototype.hasOwnProperty.call(BYTE_SIZE, x);
}

export function isFloatStorageDtype(d: StorageDtype): d is FloatStorageDtype {
  return d === 'F64' || d === 'F32' || d === 'F16' || d === 'BF16';
}

/** A float dtype read into float32: the written ones and F8_E4M3. */
export function isReadFloatDtype(d: StorageDtype): d is ReadFloatDtype {
  return isFloatStorageDtype(d) || d === 'F8_E4M3';
}

export function isIntStorageDtype(d: StorageDtype): d is IntStorageDtype {
  return !isReadFloatDtype(d);
}

/** Bytes per element. */
export function dtypeByteSize(d: StorageDtype): number {
  return BYTE_SIZE[d];
}

/** Rank used by the reference writer's layout order (higher is written first). */
export function referenceOrderRank(d: StorageDtype): number {
  return REFERENCE_ORDER_RANK[d];
}

/**
 * Element count of a shape, or null when a dimension is not a non-negative safe integer or the product is not a
 * safe integer (so callers can word the error for their file / tensor).
 */
export function elementCount(shape: readonly unknown[]): number | null {
  let n = 1;
  for (const d of shape) {
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) return null;
    n *= d;
    if (!Number.isSafeInteger(n)) return null;
  }
  return n;
}

const HOST_IS_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Throws one line on a big-endian host, where the typed-array views below would read the bytes wrongly. */
export function requireLittleEndianHost(): void {
  if (!HOST_IS_LITTLE_ENDIAN) throw new Error('moe-tune reads and writes safetensors only on little-endian hosts');
}

// ------------------------------------------------------------------------------------------------ scalar codecs

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** bf16 bits -> the float32 value (exact). */
export function bf16ToFloat32(bits: number): number {
  u32Scratch[0] = (bits & 0xffff) << 16;
  return f32Scratch[0]!;
}

/** f16 bits -> the float32 value (exact). */
export function f16ToFloat32(bits: number): number {
  u32Scratch[0] = f16TableEntry(bits & 0xffff);
  return f32Scratch[0]!;
}

/** float32 value (a JS number is first rounded to float32) -> bf16 bits, round to nearest even. */
export function float32ToBf16(x: number): number {
  f32Scratch[0] = x;
  return f32BitsToBf16Bits(u32Scratch[0]!);
}

/** float32 value (a JS number is first rounded to float32) -> f16 bits, round to nearest even. */
export function float32ToF16(x: number): number {
  f32Scratch[0] = x;
  return f32BitsToF16Bits(u32Scratch[0]!);
}

function f32BitsToBf16Bits(x: number): number {
  if ((x & 0x7fffffff) > 0x7f800000) return 0x7fc0;
  // Adding 0x7fff plus the lowest kept bit rounds to nearest with ties to even; x + 0x8000 < 2^32 for non-NaN x.
  return (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
}

function f32BitsToF16Bits(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const abs = x & 0x7fffffff;
  if (abs > 0x7f800000) return sign | 0x7e00; // NaN
  // 0x477ff000 is 65520, halfway between the largest f16 (65504, odd mantissa) and 65536: ties go to inf.
  if (abs >= 0x477ff000) return sign | 0x7c00;
  const exp = abs >>> 23;
  if (exp >= 113) {
    // Normal f16: rebias the exponent (127 -> 15), keep 10 mantissa bits, round the 13 dropped bits.
    let h = ((exp - 112) << 10) | ((abs >>> 13) & 0x3ff);
    const rest = abs & 0x1fff;
    if (rest > 0x1000 || (rest === 0x1000 && (h & 1) === 1)) h += 1; // a carry into the exponent is correct
    return sign | h;
  }
  // Subnormal f16 (or zero): value / 2^-24 = m * 2^(exp - 126) with the implicit bit restored.
  if (exp < 101) return sign; // below 2^-26, under half the smallest subnormal (2^-24): rounds to zero
  const m = (abs & 0x7fffff) | 0x800000;
  const shift = 126 - exp; // 14..25
  let q = m >>> shift;
  const rest = m & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  if (rest > half || (rest === half && (q & 1) === 1)) q += 1; // q may reach 0x400, the smallest normal: correct
  return sign | q;
}

// ------------------------------------------------------------------------------------------------ f16 table

let f16Table: Uint32Array | null = null;

/** float32 bits of every f16 bit pattern (64K entries, 256 KiB), built on first use. */
function f16TableEntry(h: number): number {
  return (f16Table ?? buildF16Table())[h]!;
}

function buildF16Table(): Uint32Array {
  const table = new Uint32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = (h & 0x8000) << 16;
    const exp = (h >>> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0x1f) {
      table[h] = (sign | 0x7f800000 | (mant << 13)) >>> 0; // inf, or NaN with its payload (quiet bit included)
    } else if (exp !== 0) {
      table[h] = (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0;
    } else if (mant === 0) {
      table[h] = sign >>> 0;
    } else {
      // Subnormal: mant * 2^-24 is exact in float32.
      f32Scratch[0] = mant * 2 ** -24;
      table[h] = (sign | u32Scratch[0]!) >>> 0;
    }
  }
  f16Table = table;
  return table;
}

// ------------------------------------------------------------------------------------------------ f8 e4m3fn table

let f8Table: Float32Array | null = null;

/** The float32 value of every float8_e4m3fn bit pattern (256 entries), built on first use. */
export function f8e4m3Table(): Float32Array {
  if (f8Table) return f8Table;
  const table = new Float32Array(256);
  for (let b = 0; b < 256; b++) {
    const sign = b & 0x80 ? -1 : 1;
    const exp = (b >>> 3) & 0xf;
    const mant = b & 0x7;
    if (exp === 0xf && mant === 0x7) table[b] = NaN; // e4m3fn: the only NaN pattern; no infinities
    else if (exp === 0) table[b] = sign * mant * 2 ** -9; // subnormal: (mant / 8) * 2^(1 - 7)
    else table[b] = sign * (1 + mant / 8) * 2 ** (exp - 7);
  }
  f8Table = table;
  return table;
}

// ------------------------------------------------------------------------------------------------ array codecs

/** bf16 bits -> float32, element by element (exact). `out.length` elements are converted. */
export function bf16ArrayToFloat32(src: Uint16Array, out: Float32Array): void {
  const n = checkLengths(src.length, out.length);
  const o = new Uint32Array(out.buffer, out.byteOffset, n);
  for (let i = 0; i < n; i++) o[i] = src[i]! << 16;
}

/** f16 bits -> float32 through the 64K-entry table (exact). */
export function f16ArrayToFloat32(src: Uint16Array, out: Float32Array): void {
  const n = checkLengths(src.length, out.length);
  const table = f16Table ?? buildF16Table();
  const o = new Uint32Array(out.buffer, out.byteOffset, n);
  for (let i = 0; i < n; i++) o[i] = table[src[i]!]!;
}

/** float32 -> bf16 bits, round to nearest even. */
export function float32ArrayToBf16(src: Float32Array, out: Uint16Array): void {
  const n = checkLengths(src.length, out.length);
  const s = new Uint32Array(src.buffer, src.byteOffset, n);
  for (let i = 0; i < n; i++) {
    const x = s[i]!;
    out[i] = (x & 0x7fffffff) > 0x7f800000 ? 0x7fc0 : (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
  }
}

/** float32 -> f16 bits, round to nearest even. */
export function float32ArrayToF16(src: Float32Array, out: Uint16Array): void {
  const n = checkLengths(src.length, out.length);
  const s = new Uint32Array(src.buffer, src.byteOffset, n);
  for (let i = 0; i < n; i++) out[i] = f32BitsToF16Bits(s[i]!);
}

function checkLengths(src: number, out: number): number {
  if (src !== out) throw new Error(`dtype conversion: source has ${src} elements but the output has ${out}`);
  return out;
}

/**
 * Decodes little-endian bytes of a float dtype into `out` (`bytes.byteLength` must be `out.length` x the dtype's
 * size). Unaligned input is copied first.
 */
export function decodeFloatBytes(dtype: ReadFloatDtype, bytes: Uint8Array, out: Float32Array): void {
  const size = BYTE_SIZE[dtype];
  if (bytes.byteLength !== out.length * size) {
    throw new Error(`dtype conversion: ${bytes.byteLength} bytes of ${dtype} do not make ${out.length} elements`);
  }
  const b = bytes.byteOffset % size === 0 ? bytes : bytes.slice();
  switch (dtype) {
    case 'F32':
      out.set(new Float32Array(b.buffer, b.byteOffset, out.length));
      return;
    case 'F64': {
      const s = new Float64Array(b.buffer, b.byteOffset, out.length);
      for (let i = 0; i < s.length; i++) out[i] = s[i]!;
      return;
    }
    case 'BF16':
      bf16ArrayToFloat32(new Uint16Array(b.buffer, b.byteOffset, out.length), out);
      return;
    case 'F16':
      f16ArrayToFloat32(new Uint16Array(b.buffer, b.byteOffset, out.length), out);
      return;
    case 'F8_E4M3': {
      const table = f8e4m3Table();
      for (let i = 0; i < out.length; i++) out[i] = table[b[i]!]!;
      return;
    }
  }
}

/** Encodes float32 values as little-endian bytes of a float dtype into `out` (`src.length` x the dtype's size). */
export function encodeFloatBytes(dtype: FloatStorageDtype, src: Float32Array, out: Uint8Array): void {
  const size = BYTE_SIZE[dtype];
  if (out.byteLength !== src.length * size) {
    throw new Error(`dtype conversion: ${src.length} elements of ${dtype} need ${src.length * size} bytes, got ${out.byteLength}`);
  }
  const aligned = out.byteOffset % size === 0;
  const o = aligned ? out : new Uint8Array(out.byteLength);
  switch (dtype) {
    case 'F32':
      new Float32Array(o.buffer, o.byteOffset, src.length).set(src);
      break;
    case 'F64':
      new Float64Array(o.buffer, o.byteOffset, src.length).set(src);
      break;
    case 'BF16':
      float32ArrayToBf16(src, new Uint16Array(o.buffer, o.byteOffset, src.length));
      break;
    case 'F16':
      float32ArrayToF16(src, new Uint16Array(o.buffer, o.byteOffset, src.length));
      break;
  }
  if (!aligned) out.set(o);
}

/**
 * Decodes little-endian bytes of an integer dtype into Int32Array `out`. BOOL maps to 0 / 1 (any non-zero byte is
 * true). Returns the index of the first I64 value outside int32 (nothing past it is guaranteed written), or -1.
 */
export function decodeIntBytes(dtype: IntStorageDtype, bytes: Uint8Array, out: Int32Array): number {
  const size = BYTE_SIZE[dtype];
  if (bytes.byteLength !== out.length * size) {
    throw new Error(`dtype conversion: ${bytes.byteLength} bytes of ${dtype} do not make ${out.length} elements`);
  }
  const b = bytes.byteOffset % size === 0 ? bytes : bytes.slice();
  const n = out.length;
  switch (dtype) {
    case 'I64': {
      const s = new Int32Array(b.buffer, b.byteOffset, 2 * n);
      for (let i = 0; i < n; i++) {
        const lo = s[2 * i]!;
        if (s[2 * i + 1] !== lo >> 31) return i; // the high word must be the sign extension of the low word
        out[i] = lo;
      }
      return -1;
    }
    case 'I32':
      out.set(new Int32Array(b.buffer, b.byteOffset, n));
      return -1;
    case 'I16':
      out.set(new Int16Array(b.buffer, b.byteOffset, n));
      return -1;
    case 'I8':
      out.set(new Int8Array(b.buffer, b.byteOffset, n));
      return -1;
    case 'U8':
      out.set(b);
      return -1;
    case 'BOOL':
      for (let i = 0; i < n; i++) out[i] = b[i] === 0 ? 0 : 1;
      return -1;
  }
}
