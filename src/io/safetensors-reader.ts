/**
 * Our own safetensors reader. (The npm `safetensors` package is a browser-only, read-only toy: it cannot read
 * through a file handle, knows nothing of sharded checkpoints and does not validate files, so we do not use it.)
 *
 * Format (huggingface/safetensors README): 8 bytes little-endian u64 N, then N bytes of UTF-8 JSON starting with
 * `{` (may be padded with trailing spaces), then the data section. The header maps tensor names to
 * `{dtype, shape, data_offsets: [begin, end]}` (offsets relative to the data section) plus an optional
 * `__metadata__` string -> string map. The tensors must cover the data section exactly: sorted by offset, each one
 * starts where the previous ended, the first at 0, the last at the end of the file (no holes, no overlap, no
 * trailing bytes), and each byte range is exactly shape x dtype size.
 *
 * `SafetensorsFile.open` validates all of that up front; reads are then lazy, per tensor, with fs.readSync at the
 * tensor's offset (a shard is never read whole to get one tensor). Every error is one line naming the file (and
 * the tensor).
 */
import { fileKind } from './regular-file.js';
import * as fs from 'node:fs';
import {
  STORAGE_DTYPES,
  UNSUPPORTED_FORMAT_DTYPES,
  decodeFloatBytes,
  decodeIntBytes,
  dtypeByteSize,
  elementCount,
  isReadFloatDtype,
  isStorageDtype,
  requireLittleEndianHost,
  type StorageDtype,
} from './dtype.js';
import { FileFormatError, errorText } from './file-format-error.js';
import { getBackend } from '../tensor/index.js';

/** The reference implementation's limit on the header length. */
export const MAX_HEADER_BYTES = 100_000_000;
/** Bytes converted per step when a read needs a dtype conversion (bounds the scratch memory of a read). */
const CONVERT_CHUNK_BYTES = 1 << 22;

export interface TensorInfo {
  readonly dtype: StorageDtype;
  readonly shape: readonly number[];
  /** Element count (product of shape; 1 for a scalar). */
  readonly numel: number;
  /** Absolute offset of the tensor's first byte in the file (8 + header length + data_offsets[0]). */
  readonly byteOffset: number;
  readonly byteLength: number;
}

/** Where a float tensor's bytes lie in an open file (for kernels that read them with pread). */
export interface StoredTensorLocation {
  readonly fd: number;
  readonly byteOffset: number;
  readonly dtype: 'F32' | 'BF16' | 'F16';
  readonly numel: number;
}

const NATIVE_DTYPE = { F32: 0, BF16: 1, F16: 2 } as const;

export class SafetensorsFile {
  readonly path: string;
  /** `__metadata__` of the header ({} when absent). */
  readonly metadata: Readonly<Record<string, string>>;
  /** Header length N (bytes of JSON, padding included). */
  readonly headerByteLength: number;
  /** File size in bytes. */
  readonly byteLength: number;
  private fd: number | null;
  private readonly tensors: ReadonlyMap<string, TensorInfo>;

  private constructor(
    path: string,
    fd: number,
    metadata: Record<string, string>,
    headerByteLength: number,
    byteLength: number,
    tensors: Map<string, TensorInfo>,
  ) {
    this.path = path;
    this.fd = fd;
    this.metadata = Object.freeze(metadata);
    this.headerByteLength = headerByteLength;
    this.byteLength = byteLength;
    this.tensors = tensors;
  }

  /** Opens and fully validates a file; throws a one-line FileFormatError naming it on any problem. */
  static open(path: string): SafetensorsFile {
    requireLittleEndianHost();
    refuseNonRegular(path);
    let fd: number;
    try {
      fd = fs.openSync(path, 'r');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new FileFormatError(path, code === 'ENOENT' ? 'file not found' : `cannot open: ${errorText(err)}`);
    }
    try {
      const parsed = parseAndValidate(path, fd);
      return new SafetensorsFile(path, fd, parsed.metadata, parsed.headerByteLength, parsed.fileSize, parsed.tensors);
    } catch (err) {
      fs.closeSync(fd);
      throw err;
    }
  }

  /** Tensor names in data order (the order they are stored in the file). */
  names(): string[] {
    return [...this.tensors.keys()];
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  info(name: string): TensorInfo {
    const info = this.tensors.get(name);
    if (info === undefined) {
      throw new FileFormatError(this.path, `no such tensor (the file holds ${this.tensors.size})`, name);
    }
    return info;
  }

  /** The tensor's bytes as stored (little-endian, its own dtype). */
  readRaw(name: string): Uint8Array {
    const info = this.info(name);
    const out = new Uint8Array(info.byteLength);
    this.readBytes(name, info.byteOffset, out);
    return out;
  }

  /** A float tensor converted to float32 (bf16 / f16 exactly, f64 rounded). */
  readFloat32(name: string): Float32Array {
    const out = new Float32Array(this.info(name).numel);
    this.readFloat32Into(name, out);
    return out;
  }

  /**
   * Converts a float tensor straight into `out` (exactly numel elements). F32 data is read directly into `out`'s
   * bytes with no intermediate copy; other dtypes go through a bounded scratch chunk.
   */
  readFloat32Into(name: string, out: Float32Array): void {
    const info = this.info(name);
    const dtype = info.dtype;
    if (!isReadFloatDtype(dtype)) {
      throw new FileFormatError(this.path, `is ${dtype}, not a float dtype; read it with readInt32 or readRaw`, name);
    }
    this.checkOut(name, info, out.length);
    const k = getBackend();
    if (k.decodeStored && dtype !== 'F64' && dtype !== 'F8_E4M3' && info.numel > 0) {
      // native: the pool's threads pread and convert their own chunks (bit-exact, src/io/dtype.ts)
      if (this.fd === null) throw new FileFormatError(this.path, 'read after close()', name);
      const r = k.decodeStored(NATIVE_DTYPE[dtype], null, this.fd, info.byteOffset, info.numel, out);
      if (r === 1) throw new FileFormatError(this.path, `file ended while reading (was it truncated after opening?)`, name);
      if (r !== 0) throw new FileFormatError(this.path, `read failed (errno ${-r})`, name);
      return;
    }
    if (dtype === 'F32') {
      this.readBytes(name, info.byteOffset, new Uint8Array(out.buffer, out.byteOffset, info.byteLength));
      return;
    }
    this.decodeChunked(name, info, (bytes, start, n) => decodeFloatBytes(dtype, bytes, out.subarray(start, start + n)));
  }

  /**
   * The file descriptor, offset, dtype and count of a float tensor stored as F32 / BF16 / F16 (the
   * file stays open until close()); null for other dtypes.
   */
  storedLocation(name: string): StoredTensorLocation | null {
    const info = this.info(name);
    if (this.fd === null) throw new FileFormatError(this.path, 'read after close()', name);
    if (info.dtype !== 'F32' && info.dtype !== 'BF16' && info.dtype !== 'F16') return null;
    return { fd: this.fd, byteOffset: info.byteOffset, dtype: info.dtype, numel: info.numel };
  }

  /** An integer tensor (I64 / I32 / I16 / I8 / U8 / BOOL) as Int32Array; an I64 value outside int32 is an error. */
  readInt32(name: string): Int32Array {
    const info = this.info(name);
    const dtype = info.dtype;
    if (isReadFloatDtype(dtype)) {
      throw new FileFormatError(this.path, `is ${dtype}, not an integer dtype; read it with readFloat32`, name);
    }
    const out = new Int32Array(info.numel);
    this.decodeChunked(name, info, (bytes, start, n) => {
      const bad = decodeIntBytes(dtype, bytes, out.subarray(start, start + n));
      if (bad >= 0) {
        const v = new DataView(bytes.buffer, bytes.byteOffset + bad * 8, 8).getBigInt64(0, true);
        throw new FileFormatError(this.path, `I64 value ${v} at element ${start + bad} does not fit in int32`, name);
      }
    });
    return out;
  }

  /**
   * Reads a tensor's stored bytes in bounded chunks (CONVERT_CHUNK_BYTES, one scratch buffer) and hands each
   * chunk to `decode` with the index of its first element and its element count.
   */
  private decodeChunked(name: string, info: TensorInfo, decode: (bytes: Uint8Array, start: number, n: number) => void): void {
    const size = dtypeByteSize(info.dtype);
    const perChunk = Math.max(1, Math.floor(CONVERT_CHUNK_BYTES / size));
    const scratch = new Uint8Array(Math.min(perChunk, info.numel) * size);
    for (let start = 0; start < info.numel; start += perChunk) {
      const n = Math.min(perChunk, info.numel - start);
      const bytes = scratch.subarray(0, n * size);
      this.readBytes(name, info.byteOffset + start * size, bytes);
      decode(bytes, start, n);
    }
  }

  close(): void {
    if (this.fd !== null) {
      fs.closeSync(this.fd);
      this.fd = null;
    }
  }

  private checkOut(name: string, info: TensorInfo, length: number): void {
    if (length !== info.numel) {
      throw new FileFormatError(this.path, `output has ${length} elements but the tensor has ${info.numel} (shape [${info.shape.join(', ')}])`, name);
    }
  }

  private readBytes(name: string, position: number, target: Uint8Array): void {
    if (this.fd === null) throw new FileFormatError(this.path, 'read after close()', name);
    let done = 0;
    while (done < target.byteLength) {
      const n = fs.readSync(this.fd, target, done, Math.min(target.byteLength - done, 1 << 30), position + done);
      if (n === 0) throw new FileFormatError(this.path, `file ended at byte ${position + done} while reading (was it truncated after opening?)`, name);
      done += n;
    }
  }
}

// ------------------------------------------------------------------------------------------------ validation

interface ParsedHeader {
  metadata: Record<string, string>;
  headerByteLength: number;
  fileSize: number;
  tensors: Map<string, TensorInfo>;
}

interface RawEntry {
  name: string;
  dtype: StorageDtype;
  shape: number[];
  numel: number;
  begin: number;
  end: number;
}

function readExactly(fd: number, length: number, position: number): Uint8Array {
  const out = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const n = fs.readSync(fd, out, done, Math.min(length - done, 1 << 30), position + done);
    if (n === 0) break;
    done += n;
  }
  return out.subarray(0, done);
}

function parseAndValidate(path: string, fd: number): ParsedHeader {
  const fail = (detail: string, tensor?: string): never => {
    throw new FileFormatError(path, detail, tensor);
  };
  const stat = fs.fstatSync(fd);
  if (!stat.isFile()) fail('not a regular file (expected a .safetensors file)');
  const fileSize = stat.size;
  if (fileSize < 8) fail(`truncated: the file is ${fileSize} bytes, shorter than the 8-byte header length`);
  const lengthBytes = readExactly(fd, 8, 0);
  const headerLength64 = new DataView(lengthBytes.buffer, lengthBytes.byteOffset, 8).getBigUint64(0, true);
  if (headerLength64 > BigInt(fileSize - 8)) {
    fail(`header length ${headerLength64} runs past the end of the file (${fileSize} bytes, so at most ${fileSize - 8}); truncated or not a safetensors file`);
  }
  const headerLength = Number(headerLength64);
  if (headerLength > MAX_HEADER_BYTES) fail(`header length ${headerLength} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  const headerBytes = readExactly(fd, headerLength, 8);
  if (headerBytes.byteLength !== headerLength) fail(`truncated while reading the ${headerLength}-byte header`);

  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(headerBytes);
  } catch {
    return fail('invalid JSON header: not valid UTF-8');
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (err) {
    return fail(`invalid JSON header: ${errorText(err)}`);
  }
  if (!isPlainObject(header)) fail(`header must be a JSON object of tensors, got ${jsonTypeOf(header)}`);
  if (!text.startsWith('{')) fail(`header must start with "{" (the format forbids leading whitespace), found ${JSON.stringify(text.slice(0, 16))}`);
  const headerObj = header as Record<string, unknown>;

  const metadata: Record<string, string> = {};
  const rawMeta = headerObj['__metadata__'];
  if (rawMeta !== undefined) {
    if (!isPlainObject(rawMeta)) fail('__metadata__ must be an object of string values');
    for (const [k, v] of Object.entries(rawMeta as Record<string, unknown>)) {
      if (typeof v !== 'string') fail(`__metadata__ value for ${JSON.stringify(k)} must be a string, got ${jsonTypeOf(v)}`);
      metadata[k] = v as string;
    }
  }

  const dataLength = fileSize - 8 - headerLength;
  const entries: RawEntry[] = [];
  for (const [name, value] of Object.entries(headerObj)) {
    if (name === '__metadata__') continue;
    entries.push(parseEntry(name, value, fail));
  }
  for (const e of entries) {
    if (e.end > dataLength) {
      fail(`data_offsets [${e.begin}, ${e.end}] run past the end of the data section (${dataLength} bytes): offsets out of range or file truncated`, e.name);
    }
  }
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let covered = 0;
  let previous: RawEntry | null = null;
  for (const e of entries) {
    if (e.begin < covered && previous !== null) {
      fail(`data_offsets [${e.begin}, ${e.end}] overlap tensor ${JSON.stringify(previous.name)} at [${previous.begin}, ${previous.end}]`, e.name);
    }
    if (e.begin > covered) {
      fail(`data_offsets [${e.begin}, ${e.end}] leave bytes [${covered}, ${e.begin}) of the data section covered by no tensor (the format forbids holes)`, e.name);
    }
    covered = e.end;
    previous = e;
  }
  if (covered !== dataLength) {
    fail(`the tensors cover ${covered} bytes but the data section holds ${dataLength}: ${dataLength - covered} trailing bytes belong to no tensor`);
  }

  const dataStart = 8 + headerLength;
  const tensors = new Map<string, TensorInfo>();
  for (const e of entries) {
    tensors.set(e.name, Object.freeze({
      dtype: e.dtype,
      shape: Object.freeze(e.shape) as readonly number[],
      numel: e.numel,
      byteOffset: dataStart + e.begin,
      byteLength: e.end - e.begin,
    }));
  }
  return { metadata, headerByteLength: headerLength, fileSize, tensors };
}

function parseEntry(name: string, value: unknown, fail: (detail: string, tensor?: string) => never): RawEntry {
  if (!isPlainObject(value)) fail(`header entry must be an object {dtype, shape, data_offsets}, got ${jsonTypeOf(value)}`, name);
  const v = value as Record<string, unknown>;
  for (const key of ['dtype', 'shape', 'data_offsets']) {
    if (!(key in v)) fail(`header entry is missing "${key}" (expected {dtype, shape, data_offsets})`, name);
  }
  const dtype = v['dtype'];
  if (!isStorageDtype(dtype)) {
    if (typeof dtype === 'string' && UNSUPPORTED_FORMAT_DTYPES.includes(dtype)) {
      fail(`dtype ${dtype} is not supported by moe-tune (supported: ${STORAGE_DTYPES.join(', ')})`, name);
    }
    fail(`unknown dtype ${JSON.stringify(dtype)} (expected one of ${STORAGE_DTYPES.join(', ')})`, name);
  }
  const shape = v['shape'];
  if (!Array.isArray(shape)) fail(`shape must be an array of non-negative integers, got ${jsonTypeOf(shape)}`, name);
  const numel = elementCount(shape as unknown[]);
  if (numel === null) fail(`shape ${JSON.stringify(shape)} must hold non-negative integers with a safe-integer product`, name);
  const offsets = v['data_offsets'];
  if (
    !Array.isArray(offsets) || offsets.length !== 2 ||
    !offsets.every((x) => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0)
  ) {
    fail(`data_offsets must be [begin, end], two non-negative integers, got ${JSON.stringify(offsets)}`, name);
  }
  const [begin, end] = offsets as [number, number];
  if (end < begin) fail(`data_offsets [${begin}, ${end}] end before they begin`, name);
  const d = dtype as StorageDtype;
  const expected = (numel as number) * dtypeByteSize(d);
  if (end - begin !== expected) {
    fail(`shape [${(shape as number[]).join(', ')}] x ${d} (${dtypeByteSize(d)} bytes) needs ${expected} bytes but data_offsets [${begin}, ${end}] hold ${end - begin}`, name);
  }
  return { name, dtype: d, shape: [...(shape as number[])], numel: numel as number, begin, end };
}

function isPlainObject(x: unknown): boolean {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function jsonTypeOf(x: unknown): string {
  if (x === null) return 'null';
  if (Array.isArray(x)) return 'an array';
  if (typeof x === 'object') return 'an object';
  const text = JSON.stringify(x) ?? String(x);
  return `${typeof x} ${text.length > 40 ? `${text.slice(0, 40)}...` : text}`;
}

/** A FIFO or device would block or never end: refuse it by name before opening (regular-file.ts). */
function refuseNonRegular(path: string): void {
  let st: fs.Stats;
  try {
    st = fs.statSync(path);
  } catch {
    return; // openSync reports it
  }
  if (!st.isFile()) throw new FileFormatError(path, `is ${fileKind(st)}, not a regular file (expected a safetensors file)`);
}
