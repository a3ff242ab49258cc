/**
 * Hugging Face checkpoints: a directory holding either `model.safetensors`, or shards
 * `model-0000i-of-0000n.safetensors` listed by `model.safetensors.index.json`
 * (`{"metadata": {"total_size": N}, "weight_map": {tensor: shard file}}`).
 *
 * Reading (`openCheckpoint`) opens and validates every file up front and then reads tensors lazily. Like
 * transformers, a single `model.safetensors` wins over an index when both are present.
 *
 * Writing (`writeCheckpoint`) follows transformers' `save_pretrained` (through huggingface_hub's shard splitter):
 * tensors are taken in the order given; a tensor goes to the current shard unless that would push the shard past
 * `maxShardBytes`, which closes the shard first; a tensor larger than `maxShardBytes` alone gets a shard of its own,
 * placed at that point in the list while the current shard stays open. One shard is written as `model.safetensors`
 * with no index. Shard files carry `__metadata__` {"format": "pt"} (transformers refuses files without a known
 * format) plus the caller's metadata, and the index is `json.dumps(index, indent=2, sort_keys=True) + "\n"`.
 * Tensors may come from a (async) generator, each with lazy data: a shard is written as soon as it is complete,
 * so at most one shard's tensor descriptors, and one tensor's data, are held at a time.
 *
 * Atomicity: shards are written under temp names, renamed into place when all are complete (their final names need
 * the shard count), then the index is written atomically and stale weight files of an earlier save are removed. For
 * a whole model directory that appears at once, call this inside `withAtomicDir`.
 */
import { requireRegularFile } from './regular-file.js';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { FloatStorageDtype, StorageDtype } from './dtype.js';
import { removeQuietly, tempSiblingPath, writeFileAtomic } from './atomic.js';
import { FileFormatError, errorText } from './file-format-error.js';
import { applyFp8BlockScales, FP8_SCALE_SUFFIX, fp8BlockOfDir } from './fp8-blocks.js';
import { pythonJsonDumps } from './python-json.js';
import { SafetensorsFile, type StoredTensorLocation, type TensorInfo } from './safetensors-reader.js';
import {
  planTensor,
  writePlannedSafetensors,
  type PlannedTensor,
  type TensorToWrite,
} from './safetensors-writer.js';

export const SINGLE_WEIGHTS_FILE = 'model.safetensors';
export const WEIGHTS_INDEX_FILE = 'model.safetensors.index.json';
/** transformers' default `max_shard_size` ("5GB", decimal). */
export const DEFAULT_MAX_SHARD_BYTES = 5_000_000_000;
const SHARD_NAME = /^model-\d{5}-of-\d{5}\.safetensors$/;

/** `model-00002-of-00005.safetensors`, as transformers names shards (1-based). */
export function shardFileName(index: number, count: number): string {
  return `model-${String(index).padStart(5, '0')}-of-${String(count).padStart(5, '0')}.safetensors`;
}

export interface CheckpointTensorInfo extends TensorInfo {
  /** Absolute path of the safetensors file holding the tensor. */
  readonly file: string;
}

export class Checkpoint {
  readonly dir: string;
  /** The index file, or null for a single `model.safetensors`. */
  readonly indexPath: string | null;
  /** The safetensors files, in shard order. */
  readonly files: readonly string[];
  /** Sum of the tensors' stored bytes. */
  readonly totalBytes: number;
  private readonly shards: SafetensorsFile[];
  private readonly owner: ReadonlyMap<string, SafetensorsFile>;

  /** The [rows, columns] block of a fine-grained FP8 checkpoint (config.json quant_method "fp8"), else null. */
  readonly fp8Block: readonly [number, number] | null;

  constructor(dir: string, indexPath: string | null, shards: SafetensorsFile[], owner: Map<string, SafetensorsFile>, fp8Block: readonly [number, number] | null = null) {
    this.dir = dir;
    this.fp8Block = fp8Block;
    this.indexPath = indexPath;
    this.shards = shards;
    this.files = shards.map((s) => s.path);
    this.owner = owner;
    let total = 0;
    for (const [name, file] of owner) total += file.info(name).byteLength;
    this.totalBytes = total;
  }

  /**
   * Tensor names in storage order (shard by shard, by offset within each). The block scales of float8 weights
   * (`<name>_scale_inv`) are part of their weight (readFloat32Into applies them), not tensors of their own.
   */
  names(): string[] {
    return [...this.owner.keys()].filter((n) => !this.isFp8Scale(n));
  }

  private isFp8Scale(name: string): boolean {
    if (!name.endsWith(FP8_SCALE_SUFFIX)) return false;
    const weight = name.slice(0, -FP8_SCALE_SUFFIX.length);
    return this.owner.has(weight) && this.dtypeOf(weight) === 'F8_E4M3';
  }

  has(name: string): boolean {
    return this.owner.has(name);
  }

  info(name: string): CheckpointTensorInfo {
    const file = this.fileOf(name);
    return { ...file.info(name), file: file.path };
  }

  dtypeOf(name: string): StorageDtype {
    return this.fileOf(name).info(name).dtype;
  }

  readRaw(name: string): Uint8Array {
    return this.fileOf(name).readRaw(name);
  }

  readFloat32(name: string): Float32Array {
    const out = new Float32Array(this.info(name).numel);
    this.readFloat32Into(name, out);
    return out;
  }

  /** A float tensor as float32; a float8 weight comes dequantised with its block scales (fp8-blocks.ts). */
  readFloat32Into(name: string, out: Float32Array): void {
    const file = this.fileOf(name);
    file.readFloat32Into(name, out);
    if (file.info(name).dtype !== 'F8_E4M3') return;
    const scaleName = `${name}${FP8_SCALE_SUFFIX}`;
    if (!this.owner.has(scaleName)) {
      throw new FileFormatError(file.path, `is F8_E4M3 without block scales '${scaleName}' (moe-tune reads fine-grained FP8 checkpoints: quant_method "fp8" with weight_block_size)`, name);
    }
    if (this.fp8Block === null) {
      throw new FileFormatError(file.path, `is F8_E4M3 with block scales, but ${path.join(this.dir, 'config.json')} declares no quantization_config {quant_method: "fp8", weight_block_size}`, name);
    }
    const scaleInfo = this.info(scaleName);
    applyFp8BlockScales(out, file.info(name).shape, this.readFloat32(scaleName), scaleInfo.shape, this.fp8Block, file.path, name);
  }

  /** Where a float tensor's bytes lie (see SafetensorsFile.storedLocation). */
  storedLocation(name: string): StoredTensorLocation | null {
    return this.fileOf(name).storedLocation(name);
  }

  readInt32(name: string): Int32Array {
    return this.fileOf(name).readInt32(name);
  }

  close(): void {
    for (const s of this.shards) s.close();
  }

  private fileOf(name: string): SafetensorsFile {
    const file = this.owner.get(name);
    if (file === undefined) {
      throw new FileFormatError(this.indexPath ?? path.join(this.dir, SINGLE_WEIGHTS_FILE), `no such tensor in the checkpoint (it holds ${this.owner.size})`, name);
    }
    return file;
  }
}

/** Opens `dir/model.safetensors`, or `dir/model.safetensors.index.json` and every shard it names. */
export function openCheckpoint(dir: string): Checkpoint {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(dir);
  } catch {
    throw new Error(`${dir}: checkpoint directory not found`);
  }
  if (!stat.isDirectory()) throw new Error(`${dir}: not a directory (expected a checkpoint directory)`);
  const single = path.join(dir, SINGLE_WEIGHTS_FILE);
  const indexPath = path.join(dir, WEIGHTS_INDEX_FILE);
  if (fs.existsSync(single)) {
    const file = SafetensorsFile.open(single);
    return new Checkpoint(dir, null, [file], new Map(file.names().map((n) => [n, file])), fp8BlockOfDir(dir));
  }
  if (!fs.existsSync(indexPath)) {
    throw new Error(`${dir}: no ${SINGLE_WEIGHTS_FILE} or ${WEIGHTS_INDEX_FILE} (expected a Hugging Face safetensors checkpoint)`);
  }
  return openSharded(dir, indexPath);
}

function openSharded(dir: string, indexPath: string): Checkpoint {
  const fail = (detail: string, tensor?: string): never => {
    throw new FileFormatError(indexPath, detail, tensor);
  };
  let index: unknown;
  requireRegularFile(indexPath, 'a safetensors index');
  try {
    index = JSON.parse(fs.readFileSync(indexPath, 'utf8'));
  } catch (err) {
    return fail(`invalid JSON: ${errorText(err)}`);
  }
  if (typeof index !== 'object' || index === null || Array.isArray(index)) fail('expected a JSON object with "weight_map"');
  const weightMap = (index as Record<string, unknown>)['weight_map'];
  if (typeof weightMap !== 'object' || weightMap === null || Array.isArray(weightMap)) {
    fail('"weight_map" must be an object mapping tensor names to shard files');
  }
  const byShard = new Map<string, string[]>();
  for (const [name, shard] of Object.entries(weightMap as Record<string, unknown>)) {
    if (typeof shard !== 'string' || shard.length === 0) fail(`weight_map value must be a shard file name, got ${JSON.stringify(shard)}`, name);
    const s = shard as string;
    if (path.isAbsolute(s) || s.split(/[\\/]/).some((part) => part === '..')) {
      fail(`shard ${JSON.stringify(s)} must be a file name inside the checkpoint directory`, name);
    }
    const list = byShard.get(s);
    if (list === undefined) byShard.set(s, [name]);
    else list.push(name);
  }
  if (byShard.size === 0) fail('"weight_map" is empty');

  const shards: SafetensorsFile[] = [];
  const owner = new Map<string, SafetensorsFile>();
  try {
    const shardNames = [...byShard.keys()].sort();
    for (const shardName of shardNames) {
      const shardPath = path.join(dir, shardName);
      const names = byShard.get(shardName)!;
      if (!fs.existsSync(shardPath)) {
        fail(`names shard ${JSON.stringify(shardName)} (for ${names.length} tensors, e.g. ${JSON.stringify(names[0])}) but ${shardPath} does not exist`);
      }
      const file = SafetensorsFile.open(shardPath);
      shards.push(file);
      const wanted = new Set(names);
      for (const name of names) {
        if (!file.has(name)) fail(`weight_map puts the tensor in shard ${JSON.stringify(shardName)}, which has no such tensor`, name);
      }
      for (const name of file.names()) if (wanted.has(name)) owner.set(name, file);
    }
  } catch (err) {
    for (const s of shards) s.close();
    throw err;
  }
  return new Checkpoint(dir, indexPath, shards, owner, fp8BlockOfDir(dir));
}

// ------------------------------------------------------------------------------------------------ writing

export interface WriteCheckpointOptions {
  /** Largest shard in bytes of tensor data (default 5e9, transformers' "5GB"). */
  maxShardBytes?: number;
  /** Extra `__metadata__` for every shard; {"format": "pt"} is always present unless overridden. */
  metadata?: Readonly<Record<string, string>>;
  /** Store every float tensor in this dtype (e.g. f32 in memory, BF16 on disk). */
  dtype?: FloatStorageDtype;
}

export interface WrittenCheckpoint {
  dir: string;
  /** File names written, in shard order (`model.safetensors` alone when unsharded). */
  files: string[];
  /** The index file name, or null when unsharded. */
  indexFile: string | null;
  /** Sum of the tensors' stored bytes (the index's metadata.total_size). */
  totalSize: number;
  /** Tensor name -> file name. */
  weightMap: Record<string, string>;
}

/** Writes a checkpoint into `dir` (created if missing); see the file comment for the sharding rule. */
export async function writeCheckpoint(
  dir: string,
  tensors: Iterable<TensorToWrite> | AsyncIterable<TensorToWrite> | ReadonlyMap<string, Omit<TensorToWrite, 'name'>>,
  options: WriteCheckpointOptions = {},
): Promise<WrittenCheckpoint> {
  const maxShardBytes = options.maxShardBytes ?? DEFAULT_MAX_SHARD_BYTES;
  if (!(Number.isSafeInteger(maxShardBytes) && maxShardBytes > 0)) {
    throw new Error(`writeCheckpoint ${dir}: maxShardBytes must be a positive integer, got ${maxShardBytes}`);
  }
  fs.mkdirSync(dir, { recursive: true });
  const metadata = { format: 'pt', ...(options.metadata ?? {}) };
  const planOptions = options.dtype === undefined ? {} : { floatDtype: options.dtype };
  const written: { tmp: string; names: string[] }[] = [];
  const seen = new Set<string>();
  let current: PlannedTensor[] = [];
  let currentBytes = 0;
  let totalSize = 0;

  const flush = (shard: PlannedTensor[]): void => {
    const tmp = tempSiblingPath(path.join(dir, `shard-${written.length + 1}`));
    const file = writePlannedSafetensors(tmp, shard, metadata);
    written.push({ tmp, names: file.names });
  };

  try {
    for await (const tensor of iterateTensors(tensors)) {
      const planned = planTensor(dir, tensor, planOptions);
      if (seen.has(planned.name)) throw new FileFormatError(dir, 'duplicate tensor name', planned.name);
      seen.add(planned.name);
      totalSize += planned.byteLength;
      if (planned.byteLength > maxShardBytes) {
        flush([planned]);
        continue;
      }
      if (currentBytes + planned.byteLength > maxShardBytes) {
        flush(current);
        current = [];
        currentBytes = 0;
      }
      current.push(planned);
      currentBytes += planned.byteLength;
    }
    if (current.length > 0 || written.length === 0) flush(current);
  } catch (err) {
    for (const w of written) removeQuietly(w.tmp);
    throw err;
  }

  const count = written.length;
  const files = count === 1 ? [SINGLE_WEIGHTS_FILE] : written.map((_, i) => shardFileName(i + 1, count));
  const weightMap: Record<string, string> = {};
  try {
    written.forEach((w, i) => {
      fs.renameSync(w.tmp, path.join(dir, files[i]!));
      for (const name of w.names) weightMap[name] = files[i]!;
    });
  } catch (err) {
    for (const w of written) removeQuietly(w.tmp);
    throw err;
  }
  const indexFile = count === 1 ? null : WEIGHTS_INDEX_FILE;
  if (indexFile !== null) {
    const index = { metadata: { total_size: totalSize }, weight_map: weightMap };
    writeFileAtomic(path.join(dir, indexFile), `${pythonJsonDumps(index)}\n`);
  }
  removeStaleWeights(dir, new Set([...files, ...(indexFile === null ? [] : [indexFile])]));
  return { dir, files, indexFile, totalSize, weightMap };
}

async function* iterateTensors(
  tensors: Iterable<TensorToWrite> | AsyncIterable<TensorToWrite> | ReadonlyMap<string, Omit<TensorToWrite, 'name'>>,
): AsyncGenerator<TensorToWrite> {
  if (tensors instanceof Map) {
    for (const [name, t] of (tensors as ReadonlyMap<string, Omit<TensorToWrite, 'name'>>).entries()) yield { name, ...t };
    return;
  }
  yield* tensors as Iterable<TensorToWrite> | AsyncIterable<TensorToWrite>;
}

/** Removes weight files of an earlier save that the new one does not use (so an old model.safetensors cannot shadow new shards). */
function removeStaleWeights(dir: string, keep: Set<string>): void {
  for (const entry of fs.readdirSync(dir)) {
    if (keep.has(entry)) continue;
    if (entry === SINGLE_WEIGHTS_FILE || entry === WEIGHTS_INDEX_FILE || SHARD_NAME.test(entry)) {
      fs.rmSync(path.join(dir, entry), { force: true });
    }
  }
}

/**
 * The float dtype most of a checkpoint's float bytes are stored in (F32 when it holds none; 4-bit packed
 * tensors are not floats): what a command writes by default, so a bf16 model stays bf16.
 */
export function checkpointFloatDtype(dir: string): FloatStorageDtype {
  const ckpt = openCheckpoint(dir);
  try {
    const bytes: Record<string, number> = {};
    for (const n of ckpt.names()) {
      const d = ckpt.dtypeOf(n);
      if (d === 'F32' || d === 'BF16' || d === 'F16') bytes[d] = (bytes[d] ?? 0) + ckpt.info(n).byteLength;
    }
    const best = Object.entries(bytes).sort((a, b) => b[1] - a[1])[0];
    return (best?.[0] as FloatStorageDtype | undefined) ?? 'F32';
  } finally {
    ckpt.close();
  }
}

const FLOAT_DTYPE_NAMES: Record<string, FloatStorageDtype> = { f32: 'F32', float32: 'F32', bf16: 'BF16', bfloat16: 'BF16', f16: 'F16', float16: 'F16' };

/** A `--dtype` value (f32 / bf16 / f16, or float32 / bfloat16 / float16) as a storage dtype; one-line error otherwise. */
export function parseFloatDtype(text: string, where = '--dtype'): FloatStorageDtype {
  const d = FLOAT_DTYPE_NAMES[text.toLowerCase()];
  if (!d) throw new Error(`${where} '${text}': expected one of f32, bf16, f16`);
  return d;
}
