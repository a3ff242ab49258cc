/**
 * NF4 blockwise quantisation with double quantisation of the block scales, as QLoRA / bitsandbytes
 * (`quantize_4bit(quant_type='nf4', blocksize=64, compress_statistics=True)`) define it:
 *
 *  1. The weight is flattened row-major and cut into blocks of `blockSize` (64) values (the last
 *     block may be shorter). Each block's absmax m (float32) is taken; every value w is stored as
 *     the NF4 index nearest to w * (1 / m) (see codebooks.ts; an all-zero block stores zeros).
 *  2. Packing: two 4-bit indices per byte, element 2i in the HIGH nibble and element 2i + 1 in the
 *     LOW nibble of byte i (bitsandbytes' order); an odd element count leaves the last low nibble 0.
 *  3. Double quantisation (on by default): the float32 absmax values get their mean subtracted
 *     (`offset`), then are quantised blockwise to 8 bits with the dynamic code book in blocks of
 *     256 (`nestedBlockSize`), each nested block keeping its own float32 absmax. A block's scale is
 *     recovered as dynamic[q] * nestedAbsmax[b / 256] + offset. The 4-bit indices are chosen with
 *     the exact absmax before it is compressed (as bitsandbytes does).
 *
 * Dequantised value: NF4[index] * scale, in float32. Storage: numel / 2 bytes of indices,
 * blocks bytes of scales, 4 bytes per 256 blocks and one offset: 4.127 bits per parameter.
 */
import { getBackend } from '../tensor/index.js';
import { DYNAMIC_CODE, NF4_CODE, NF4_THRESHOLDS, NF4_ZERO_INDEX, nearestIndex, nf4Index } from './codebooks.js';

export const NF4_BLOCK_SIZE = 64;
export const NESTED_BLOCK_SIZE = 256;

/** The double-quantised block scales of an NF4 weight. */
export interface Nf4NestedScales {
  /** One 8-bit dynamic-code index per NF4 block. */
  qabsmax: Uint8Array;
  /** Float32 absmax of each nested block of `blockSize` scales. */
  nestedAbsmax: Float32Array;
  /** The 8-bit code book (256 values). */
  nestedCode: Float32Array;
  nestedBlockSize: number;
  /** Mean of the float32 scales, subtracted before quantising them. */
  offset: number;
}

/** A 4-bit NF4 weight: packed indices, scales, shape. */
export interface Nf4Weight {
  /** Logical shape (row-major), e.g. [out, in] for a linear weight. */
  readonly shape: readonly number[];
  readonly numel: number;
  readonly blockSize: number;
  /** ceil(numel / 2) bytes: element 2i in the high nibble of byte i, element 2i + 1 in the low. */
  readonly codes: Uint8Array;
  /** The 4-bit code book (16 values). */
  readonly code: Float32Array;
  /** Float32 scale per block, when not double-quantised (else null). */
  readonly absmax: Float32Array | null;
  /** Double-quantised scales (else null). */
  readonly nested: Nf4NestedScales | null;
  /** Dtype of the tensor before quantisation ('float32', 'bfloat16', 'float16'), for the file header. */
  readonly sourceDtype: string;
}

export interface QuantizeNf4Options {
  /** Compress the block scales to 8 bits (default true). */
  doubleQuant?: boolean;
  /** Values per block (default 64). */
  blockSize?: number;
  /** Scales per nested block for double quantisation (default 256). */
  nestedBlockSize?: number;
  /** Recorded as the source dtype (default 'float32'). */
  sourceDtype?: string;
  /** Used in error messages. */
  name?: string;
}

export function nf4BlockCount(numel: number, blockSize: number): number {
  return Math.ceil(numel / blockSize);
}

/**
 * Quantises a float tensor (flattened row-major) to NF4: through the backend's native quantiser
 * for a Float32Array when it has one (bit-identical, threaded), else quantizeNf4Js.
 */
export function quantizeNf4(weights: ArrayLike<number>, shape: readonly number[], opts: QuantizeNf4Options = {}): Nf4Weight {
  if (weights instanceof Float32Array && weights.length === shape.reduce((a, b) => a * b, 1)) {
    const bytes = new Uint8Array(weights.buffer, weights.byteOffset, weights.byteLength);
    const q = quantizeNf4Stored({ dtype: 'F32', bytes }, shape, opts);
    if (q) return q;
  }
  return quantizeNf4Js(weights, shape, opts);
}

/** Stored float data: in memory, or `numel` values at `byteOffset` of an open file. */
export type StoredFloats =
  | { dtype: 'F32' | 'BF16' | 'F16'; bytes: Uint8Array }
  | { dtype: 'F32' | 'BF16' | 'F16'; fd: number; byteOffset: number };

const STORED_CODE = { F32: 0, BF16: 1, F16: 2 } as const;

/**
 * NF4 quantisation straight from stored bytes (f32 / bf16 / f16) by the backend's native kernel
 * (native/src/weight_load.cc): no float32 copy of the tensor is made, the threads read and
 * quantise chunk by chunk. Returns null when the backend has no such kernel or a value is not
 * finite (callers then take the reference path, which words the error).
 */
export function quantizeNf4Stored(src: StoredFloats, shape: readonly number[], opts: QuantizeNf4Options = {}): Nf4Weight | null {
  const k = getBackend();
  if (!k.nf4QuantizeStored) return null;
  const where = opts.name ? `quantizeNf4 ${opts.name}` : 'quantizeNf4';
  const numel = shape.reduce((a, b) => a * b, 1);
  const blockSize = checkedBlockSize(opts.blockSize ?? NF4_BLOCK_SIZE, where);
  if (blockSize > 4096) return null;
  const blocks = nf4BlockCount(numel, blockSize);
  const absmax = new Float32Array(blocks);
  const codes = new Uint8Array(Math.ceil(numel / 2));
  const bytes = 'bytes' in src ? src.bytes : null;
  const r = k.nf4QuantizeStored(STORED_CODE[src.dtype], bytes, bytes ? -1 : (src as { fd: number }).fd,
    bytes ? 0 : (src as { byteOffset: number }).byteOffset, numel, blockSize, NF4_THRESHOLDS, codes, absmax);
  if (r <= -2) throw new Error(`${where}: reading the stored values failed (${r === -2 ? 'the file ended early' : `errno ${-2 - r}`})`);
  if (r >= 0) return null;
  return nf4WeightOf(shape, blockSize, codes, absmax, opts, quantizeScales);
}

/**
 * The quantised weight from its codes and float32 block scales; with double quantisation (the default) the
 * scales go through `quantizeScalesWith` (the native kernel for the native path, the reference for the
 * reference path, so each path stays whole).
 */
function nf4WeightOf(
  shape: readonly number[], blockSize: number, codes: Uint8Array, absmax: Float32Array, opts: QuantizeNf4Options,
  quantizeScalesWith: (absmax: Float32Array, nestedBlockSize: number) => Nf4NestedScales,
): Nf4Weight {
  const doubleQuant = opts.doubleQuant ?? true;
  return {
    shape: [...shape],
    numel: shape.reduce((a, b) => a * b, 1),
    blockSize,
    codes,
    code: NF4_CODE,
    absmax: doubleQuant ? null : absmax,
    nested: doubleQuant ? quantizeScalesWith(absmax, opts.nestedBlockSize ?? NESTED_BLOCK_SIZE) : null,
    sourceDtype: opts.sourceDtype ?? 'float32',
  };
}

function checkedBlockSize(blockSize: number, where: string): number {
  if (!Number.isInteger(blockSize) || blockSize < 2 || blockSize % 2 !== 0) {
    throw new Error(`${where}: blockSize must be an even integer >= 2, got ${blockSize}`);
  }
  return blockSize;
}

/** The reference quantiser (TypeScript), which the native kernel equals bit for bit. */
export function quantizeNf4Js(weights: ArrayLike<number>, shape: readonly number[], opts: QuantizeNf4Options = {}): Nf4Weight {
  const where = opts.name ? `quantizeNf4 ${opts.name}` : 'quantizeNf4';
  const numel = shape.reduce((a, b) => a * b, 1);
  if (weights.length !== numel) throw new Error(`${where}: ${weights.length} values for shape [${shape.join(', ')}] (${numel} expected)`);
  const blockSize = checkedBlockSize(opts.blockSize ?? NF4_BLOCK_SIZE, where);
  const blocks = nf4BlockCount(numel, blockSize);
  const absmax = new Float32Array(blocks);
  const codes = new Uint8Array(Math.ceil(numel / 2));
  const f = Math.fround;
  for (let b = 0; b < blocks; b++) {
    const lo = b * blockSize;
    const hi = Math.min(numel, lo + blockSize);
    let m = 0;
    for (let i = lo; i < hi; i++) {
      const a = Math.abs(f(weights[i]!));
      if (a > m) m = a;
      else if (!(a === a)) throw new Error(`${where}: value ${i} is NaN`);
    }
    if (!Number.isFinite(m)) throw new Error(`${where}: value in block ${b} is not finite`);
    absmax[b] = m;
    const inv = m === 0 ? 0 : f(1 / m);
    for (let i = lo; i < hi; i++) {
      const q = m === 0 ? NF4_ZERO_INDEX : nf4Index(f(f(weights[i]!) * inv));
      if ((i & 1) === 0) codes[i >> 1] = q << 4;
      else codes[i >> 1]! |= q;
    }
  }
  return nf4WeightOf(shape, blockSize, codes, absmax, opts, quantizeScalesJs);
}

/** Double quantisation of the block scales: the backend's native kernel when it has one, else quantizeScalesJs. */
export function quantizeScales(absmax: Float32Array, nestedBlockSize = NESTED_BLOCK_SIZE): Nf4NestedScales {
  const k = getBackend();
  if (!k.nf4QuantizeScales || !Number.isInteger(nestedBlockSize) || nestedBlockSize < 1) return quantizeScalesJs(absmax, nestedBlockSize);
  const n = absmax.length;
  const qabsmax = new Uint8Array(n);
  const nestedAbsmax = new Float32Array(Math.ceil(n / nestedBlockSize));
  const offset = k.nf4QuantizeScales(absmax, n, nestedBlockSize, DYNAMIC_CODE, qabsmax, nestedAbsmax);
  return { qabsmax, nestedAbsmax, nestedCode: DYNAMIC_CODE, nestedBlockSize, offset };
}

/** Double quantisation of the block scales (see the file comment, step 3): the reference. */
export function quantizeScalesJs(absmax: Float32Array, nestedBlockSize = NESTED_BLOCK_SIZE): Nf4NestedScales {
  const n = absmax.length;
  let sum = 0;
  for (let i = 0; i < n; i++) sum += absmax[i]!;
  const offset = Math.fround(n === 0 ? 0 : sum / n);
  const nb = Math.ceil(n / nestedBlockSize);
  const nestedAbsmax = new Float32Array(nb);
  const qabsmax = new Uint8Array(n);
  const centred = new Float32Array(n);
  for (let i = 0; i < n; i++) centred[i] = absmax[i]! - offset;
  const zero = nearestIndex(DYNAMIC_CODE, 0);
  for (let b = 0; b < nb; b++) {
    const lo = b * nestedBlockSize;
    const hi = Math.min(n, lo + nestedBlockSize);
    let m = 0;
    for (let i = lo; i < hi; i++) m = Math.max(m, Math.abs(centred[i]!));
    nestedAbsmax[b] = m;
    const inv = m === 0 ? 0 : Math.fround(1 / m);
    for (let i = lo; i < hi; i++) qabsmax[i] = m === 0 ? zero : nearestIndex(DYNAMIC_CODE, Math.fround(centred[i]! * inv));
  }
  return { qabsmax, nestedAbsmax, nestedCode: DYNAMIC_CODE, nestedBlockSize, offset };
}

/** Writes the float32 scales of blocks [b0, b1) into out[0 .. b1 - b0). */
export function decodeScales(w: Nf4Weight, b0: number, b1: number, out: Float32Array | Float64Array): void {
  if (w.absmax) {
    for (let b = b0; b < b1; b++) out[b - b0] = w.absmax[b]!;
    return;
  }
  const s = w.nested!;
  const f = Math.fround;
  for (let b = b0; b < b1; b++) {
    out[b - b0] = f(f(s.nestedCode[s.qabsmax[b]!]! * s.nestedAbsmax[Math.floor(b / s.nestedBlockSize)]!) + s.offset);
  }
}

/** All block scales as float32. */
export function nf4Scales(w: Nf4Weight): Float32Array {
  const blocks = nf4BlockCount(w.numel, w.blockSize);
  const out = new Float32Array(blocks);
  decodeScales(w, 0, blocks, out);
  return out;
}

let scaleScratch = new Float32Array(64);
const lut = new Float32Array(16);

/**
 * Dequantises elements [start, end) of the flattened weight into out[0 .. end - start). This is
 * the tile primitive of the quantised GEMM: it touches only the blocks that overlap the range.
 * Per block, the 16 products code[i] * scale are formed once (float32) and every byte is two
 * table lookups.
 */
export function dequantizeRange(w: Nf4Weight, start: number, end: number, out: Float32Array | Float64Array): void {
  if (start < 0 || end > w.numel || start > end) throw new Error(`dequantizeRange: range [${start}, ${end}) outside [0, ${w.numel})`);
  if (start === end) return;
  const bs = w.blockSize;
  const b0 = Math.floor(start / bs);
  const b1 = Math.ceil(end / bs);
  if (scaleScratch.length < b1 - b0) scaleScratch = new Float32Array(b1 - b0);
  decodeScales(w, b0, b1, scaleScratch);
  const code = w.code;
  const codes = w.codes;
  for (let b = b0; b < b1; b++) {
    const scale = scaleScratch[b - b0]!;
    for (let c = 0; c < 16; c++) lut[c] = code[c]! * scale;
    const lo = Math.max(start, b * bs);
    const hi = Math.min(end, (b + 1) * bs);
    let i = lo;
    if ((i & 1) === 1 && i < hi) {
      out[i - start] = lut[codes[i >> 1]! & 15]!;
      i++;
    }
    let o = i - start;
    for (; i + 1 < hi; i += 2, o += 2) {
      const byte = codes[i >> 1]!;
      out[o] = lut[byte >> 4]!;
      out[o + 1] = lut[byte & 15]!;
    }
    if (i < hi) out[i - start] = lut[codes[i >> 1]! >> 4]!;
  }
}

/** The whole dequantised weight (float32; tests, merges and exports, never the training path). */
export function dequantizeNf4(w: Nf4Weight, out: Float32Array = new Float32Array(w.numel)): Float32Array {
  if (out.length !== w.numel) throw new Error(`dequantizeNf4: output has ${out.length} elements, expected ${w.numel}`);
  dequantizeRange(w, 0, w.numel, out);
  return out;
}

/** The 4-bit index of element i. */
export function nf4CodeAt(w: Nf4Weight, i: number): number {
  const byte = w.codes[i >> 1]!;
  return (i & 1) === 0 ? byte >> 4 : byte & 15;
}

/**
 * Bytes the weight occupies in memory: packed indices + scales (8-bit with double quantisation,
 * float32 otherwise) + nested float32 absmax + the offset. The code books are shared constants
 * and are not counted (the file format stores them per tensor, as bitsandbytes does).
 */
export function nf4StorageBytes(w: Nf4Weight): number {
  if (w.absmax) return w.codes.byteLength + w.absmax.byteLength;
  return w.codes.byteLength + w.nested!.qabsmax.byteLength + w.nested!.nestedAbsmax.byteLength + 4;
}
