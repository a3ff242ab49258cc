/**
 * Our own safetensors writer (see safetensors-reader.ts for the format). Output is byte-identical to the reference
 * implementation's `save_file`: tensors laid out by dtype (the reference's alignment order: I64, F64, F32, I32,
 * BF16, F16, I16, I8, U8, BOOL) then by name in code-point order; the header is compact JSON with `__metadata__`
 * first (its keys sorted: the reference's order there is a hash map's, i.e. arbitrary), then the tensors in data
 * order as `{"dtype", "shape", "data_offsets"}`, padded with spaces to a multiple of 8 bytes.
 *
 * The file is written to a temp file in the same directory and renamed into place; on any error nothing is left
 * behind. Writing streams tensor by tensor: a tensor's `data` may be a function that produces it when its turn
 * comes, and dtype conversions go through bounded chunks, so the file is never built in memory.
 */
import {
  decodeFloatBytes,
  dtypeByteSize,
  elementCount,
  encodeFloatBytes,
  isFloatStorageDtype,
  isStorageDtype,
  referenceOrderRank,
  requireLittleEndianHost,
  STORAGE_DTYPES,
  type FloatStorageDtype,
  type StorageDtype,
} from './dtype.js';
import { writeAllSync, writeThroughTempFile } from './atomic.js';
import { FileFormatError } from './file-format-error.js';
import { compareCodePoints } from './python-json.js';

/**
 * Tensor data. Typed arrays carry values of their own type (Float32Array = F32 values, Float64Array = F64,
 * Int32Array = I32, BigInt64Array = I64, Int16Array = I16, Int8Array = I8); Uint16Array holds the raw bits of an
 * F16 / BF16 tensor and Uint8Array the raw little-endian bytes of any dtype.
 */
export type TensorData =
  | Float32Array | Float64Array | Int32Array | BigInt64Array | Int16Array | Int8Array | Uint16Array | Uint8Array;

export interface TensorToWrite {
  name: string;
  /** Dtype written to the file. Float values are converted to it (round to nearest even); I32 values widen to I64. */
  dtype: StorageDtype;
  shape: readonly number[];
  /** The data, or a function returning it when the writer reaches this tensor (lazy: one tensor in memory). */
  data: TensorData | (() => TensorData);
}

export type TensorsToWrite = Iterable<TensorToWrite> | ReadonlyMap<string, Omit<TensorToWrite, 'name'>>;

export interface WriteSafetensorsOptions {
  /** Store every float tensor in this dtype instead of its own (integer tensors are untouched). */
  floatDtype?: FloatStorageDtype;
}

export interface WrittenFile {
  path: string;
  /** File size in bytes. */
  byteLength: number;
  /** Bytes of tensor data (the data section). */
  dataBytes: number;
  /** Tensor names in data order. */
  names: string[];
}

/** One tensor ready to be laid out: its target dtype and byte size are known before its data is produced. */
export interface PlannedTensor {
  name: string;
  dtype: StorageDtype;
  shape: number[];
  numel: number;
  byteLength: number;
  source: TensorToWrite;
}

/** Bytes converted per step when the stored dtype differs from the data's. */
const CONVERT_CHUNK_ELEMENTS = 1 << 20;

/**
 * Checks one tensor's name / dtype / shape and computes what it will occupy on disk. `file` names the file being
 * written, for error messages.
 */
export function planTensor(file: string, tensor: TensorToWrite, options: WriteSafetensorsOptions = {}): PlannedTensor {
  const name = tensor.name;
  if (typeof name !== 'string' || name.length === 0) throw new FileFormatError(file, 'a tensor has an empty or missing name');
  if (name === '__metadata__') throw new FileFormatError(file, 'tensor name "__metadata__" is reserved by the format', name);
  if (!isStorageDtype(tensor.dtype)) {
    throw new FileFormatError(file, `unknown dtype ${JSON.stringify(tensor.dtype)} (expected one of ${STORAGE_DTYPES.join(', ')})`, name);
  }
  const numel = Array.isArray(tensor.shape) ? elementCount(tensor.shape) : null;
  if (numel === null) throw new FileFormatError(file, `shape ${JSON.stringify(tensor.shape)} must be an array of non-negative integers`, name);
  const dtype = options.floatDtype !== undefined && isFloatStorageDtype(tensor.dtype) ? options.floatDtype : tensor.dtype;
  if (!isStorageDtype(dtype)) throw new FileFormatError(file, `unknown float dtype ${JSON.stringify(dtype)}`, name);
  return { name, dtype, shape: [...tensor.shape], numel, byteLength: numel * dtypeByteSize(dtype), source: tensor };
}

/** Normalises the accepted inputs (array / iterable / Map) to a list. */
export function tensorList(tensors: TensorsToWrite): TensorToWrite[] {
  if (tensors instanceof Map) {
    return [...(tensors as ReadonlyMap<string, Omit<TensorToWrite, 'name'>>).entries()].map(([name, t]) => ({ name, ...t }));
  }
  return [...(tensors as Iterable<TensorToWrite>)];
}

/** The reference layout order: larger-alignment dtypes first, then names by code point. */
export function compareLayoutOrder(a: { name: string; dtype: StorageDtype }, b: { name: string; dtype: StorageDtype }): number {
  return referenceOrderRank(b.dtype) - referenceOrderRank(a.dtype) || compareCodePoints(a.name, b.name);
}

/**
 * Writes a safetensors file atomically. `metadata` becomes `__metadata__` (omitted when undefined, as the
 * reference does). Returns what was written.
 */
export function writeSafetensors(
  path: string,
  tensors: TensorsToWrite,
  metadata?: Readonly<Record<string, string>>,
  options: WriteSafetensorsOptions = {},
): WrittenFile {
  requireLittleEndianHost();
  const planned = tensorList(tensors).map((t) => planTensor(path, t, options));
  return writePlannedSafetensors(path, planned, metadata);
}

/** Writes already-planned tensors (see `planTensor`); used by the sharded checkpoint writer. */
export function writePlannedSafetensors(
  path: string,
  planned: PlannedTensor[],
  metadata?: Readonly<Record<string, string>>,
): WrittenFile {
  const seen = new Set<string>();
  for (const p of planned) {
    if (seen.has(p.name)) throw new FileFormatError(path, 'duplicate tensor name', p.name);
    seen.add(p.name);
  }
  if (metadata !== undefined) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new FileFormatError(path, `__metadata__ value for ${JSON.stringify(k)} must be a string`);
    }
  }
  const ordered = [...planned].sort(compareLayoutOrder);
  const header = headerBytes(ordered, metadata);
  let dataBytes = 0;
  writeThroughTempFile(path, (fd) => {
    const prefix = new Uint8Array(8);
    new DataView(prefix.buffer).setBigUint64(0, BigInt(header.byteLength), true);
    writeAllSync(fd, prefix);
    writeAllSync(fd, header);
    for (const p of ordered) {
      let written = 0;
      for (const chunk of tensorBytes(path, p)) {
        writeAllSync(fd, chunk);
        written += chunk.byteLength;
      }
      if (written !== p.byteLength) throw new FileFormatError(path, `wrote ${written} bytes, expected ${p.byteLength}`, p.name);
      dataBytes += written;
    }
  });
  return { path, byteLength: 8 + header.byteLength + dataBytes, dataBytes, names: ordered.map((p) => p.name) };
}

/** The padded header bytes for tensors already in data order. */
export function headerBytes(ordered: readonly PlannedTensor[], metadata?: Readonly<Record<string, string>>): Uint8Array {
  // Built by hand rather than with JSON.stringify of an object: JavaScript objects list integer-like keys ("0",
  // "12") first, which would break the reference key order.
  const parts: string[] = [];
  if (metadata !== undefined) {
    const keys = Object.keys(metadata).sort(compareCodePoints);
    parts.push(`"__metadata__":{${keys.map((k) => `${JSON.stringify(k)}:${JSON.stringify(metadata[k])}`).join(',')}}`);
  }
  let offset = 0;
  for (const p of ordered) {
    const end = offset + p.byteLength;
    parts.push(`${JSON.stringify(p.name)}:{"dtype":"${p.dtype}","shape":[${p.shape.join(',')}],"data_offsets":[${offset},${end}]}`);
    offset = end;
  }
  const json = Buffer.from(`{${parts.join(',')}}`, 'utf8');
  const padded = Math.ceil(json.byteLength / 8) * 8;
  const out = new Uint8Array(padded).fill(0x20);
  out.set(json);
  return out;
}

/** What dtype a typed array's elements are, given the tensor's declared dtype (for raw Uint8 / Uint16 data). */
function sourceDtypeOf(file: string, name: string, declared: StorageDtype, data: TensorData): StorageDtype {
  if (data instanceof Float32Array) return 'F32';
  if (data instanceof Float64Array) return 'F64';
  if (data instanceof Int32Array) return 'I32';
  if (data instanceof BigInt64Array) return 'I64';
  if (data instanceof Int16Array) return 'I16';
  if (data instanceof Int8Array) return 'I8';
  if (data instanceof Uint8Array) return declared;
  if (data instanceof Uint16Array) {
    if (declared === 'F16' || declared === 'BF16') return declared;
    throw new FileFormatError(file, `Uint16Array data holds raw F16 / BF16 bits, but the tensor is declared ${declared}`, name);
  }
  throw new FileFormatError(file, `unsupported data type ${Object.prototype.toString.call(data)}`, name);
}

/** The tensor's stored bytes, converting to the target dtype in bounded chunks where needed. */
function* tensorBytes(file: string, p: PlannedTensor): Generator<Uint8Array> {
  const raw = p.source.data;
  const data = typeof raw === 'function' ? raw() : raw;
  if (!ArrayBuffer.isView(data)) throw new FileFormatError(file, 'data is not a typed array', p.name);
  const src = sourceDtypeOf(file, p.name, p.source.dtype, data);
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const srcSize = dtypeByteSize(src);
  if (bytes.byteLength !== p.numel * srcSize) {
    const what = data instanceof Uint8Array ? `${bytes.byteLength} bytes` : `${data.byteLength / srcSize} elements`;
    throw new FileFormatError(file, `data has ${what} but shape [${p.shape.join(', ')}] of ${src} needs ${p.numel} elements (${p.numel * srcSize} bytes)`, p.name);
  }
  const dst = p.dtype;
  if (src === dst) {
    yield bytes;
    return;
  }
  if (isFloatStorageDtype(src) && isFloatStorageDtype(dst)) {
    const n0 = Math.min(CONVERT_CHUNK_ELEMENTS, p.numel);
    const f32 = src === 'F32' && bytes.byteOffset % 4 === 0 ? null : new Float32Array(n0);
    const out = new Uint8Array(n0 * dtypeByteSize(dst));
    for (let start = 0; start < p.numel; start += CONVERT_CHUNK_ELEMENTS) {
      const n = Math.min(CONVERT_CHUNK_ELEMENTS, p.numel - start);
      let values: Float32Array;
      if (f32 === null) {
        values = new Float32Array(bytes.buffer, bytes.byteOffset + start * 4, n);
      } else {
        values = f32.subarray(0, n);
        decodeFloatBytes(src, bytes.subarray(start * srcSize, (start + n) * srcSize), values);
      }
      const chunk = out.subarray(0, n * dtypeByteSize(dst));
      encodeFloatBytes(dst, values, chunk);
      yield chunk;
    }
    return;
  }
  if (src === 'I32' && dst === 'I64') {
    const n0 = Math.min(CONVERT_CHUNK_ELEMENTS, p.numel);
    const out = new Int32Array(2 * n0);
    const values = bytes.byteOffset % 4 === 0 ? new Int32Array(bytes.buffer, bytes.byteOffset, p.numel) : new Int32Array(bytes.slice().buffer);
    for (let start = 0; start < p.numel; start += CONVERT_CHUNK_ELEMENTS) {
      const n = Math.min(CONVERT_CHUNK_ELEMENTS, p.numel - start);
      for (let i = 0; i < n; i++) {
        const v = values[start + i]!;
        out[2 * i] = v;
        out[2 * i + 1] = v >> 31;
      }
      yield new Uint8Array(out.buffer, 0, n * 8);
    }
    return;
  }
  throw new FileFormatError(file, `cannot store ${src} data as ${dst} (float data converts between float dtypes; I32 widens to I64)`, p.name);
}
