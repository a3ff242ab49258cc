/**
 * A dense, contiguous, row-major tensor. Storage is a typed array (float32 for models, float64 for
 * gradient checks, int32 for indices); reshape makes a view over the same storage. There are no
 * strides: the kernels take explicit layouts ([B, T, H, Dh] for attention), so no op needs a
 * transposed view.
 */
import type { FloatArray } from './backend.js';
import { type AnyData, type DType, dtypeOf, shapeSize, shapeStr } from './dtype.js';
import { allocate, isPooled, track } from './memory.js';
import type { TapeNode } from './tape-node.js';

const DISPOSED = new Float32Array(0);

export class Tensor {
  data: AnyData;
  readonly shape: readonly number[];
  readonly dtype: DType;
  /** True for trainable parameters and for every op output computed from one (while recording). */
  requiresGrad: boolean;
  /** Accumulated gradient of a leaf tensor that requires grad (persistent across scopes). */
  grad: Tensor | null = null;
  /** Whether `grad` holds a gradient since the last zeroGrad (else its content is stale). */
  gradValid = false;
  /** The tape node that produced this tensor (null for leaves). */
  node: TapeNode | null = null;
  /** Optional name (parameters carry their Hugging Face key). */
  name: string | undefined;
  /** The pooled buffer backing this tensor, or null when it owns plain memory. */
  readonly buffer: ArrayBuffer | null;
  private disposed = false;

  constructor(data: AnyData, shape: readonly number[], requiresGrad = false, name?: string) {
    const n = shapeSize(shape);
    if (data.length !== n) {
      throw new Error(`tensor${name ? ` ${name}` : ''}: data has ${data.length} elements but shape ${shapeStr(shape)} needs ${n}`);
    }
    this.data = data;
    this.shape = Object.freeze([...shape]);
    this.dtype = dtypeOf(data);
    this.requiresGrad = requiresGrad;
    this.name = name;
    this.buffer = isPooled(data.buffer) ? (data.buffer as ArrayBuffer) : null;
    track(this);
  }

  /** A new tensor of the given shape; pooled (uninitialised unless zero) inside a scope. */
  static empty(shape: readonly number[], dtype: DType = 'float32', zero = false): Tensor {
    return new Tensor(allocate(dtype, shapeSize(shape), zero), shape);
  }

  static zeros(shape: readonly number[], dtype: DType = 'float32'): Tensor {
    return Tensor.empty(shape, dtype, true);
  }

  static full(shape: readonly number[], value: number, dtype: DType = 'float32'): Tensor {
    const t = Tensor.empty(shape, dtype);
    t.data.fill(value);
    return t;
  }

  /** Wraps (does not copy) a typed array; number[] is copied into float32 (or the given dtype). */
  static from(data: AnyData | readonly number[], shape?: readonly number[], dtype: DType = 'float32'): Tensor {
    let arr: AnyData;
    if (Array.isArray(data)) {
      arr = dtype === 'float32' ? Float32Array.from(data) : dtype === 'float64' ? Float64Array.from(data) : Int32Array.from(data);
    } else arr = data as AnyData;
    return new Tensor(arr, shape ?? [arr.length]);
  }

  /** A trainable leaf (a parameter). */
  static param(data: Float32Array | Float64Array, shape: readonly number[], name?: string): Tensor {
    return new Tensor(data, shape, true, name);
  }

  get size(): number {
    return this.data.length;
  }

  get rank(): number {
    return this.shape.length;
  }

  get isLeaf(): boolean {
    return this.node === null;
  }

  get isDisposed(): boolean {
    return this.disposed;
  }

  markDisposed(): void {
    this.disposed = true;
    this.data = DISPOSED;
  }

  /** The float storage; throws for int32 tensors and disposed ones. */
  get f(): FloatArray {
    this.assertLive();
    if (this.dtype === 'int32') throw new Error(`tensor${this.name ? ` ${this.name}` : ''} is int32 where a float tensor was expected`);
    return this.data as FloatArray;
  }

  /** The int32 storage; throws for float tensors. */
  get i32(): Int32Array {
    this.assertLive();
    if (this.dtype !== 'int32') throw new Error(`tensor${this.name ? ` ${this.name}` : ''} is ${this.dtype} where an int32 tensor was expected`);
    return this.data as Int32Array;
  }

  assertLive(): void {
    if (this.disposed) {
      throw new Error(`tensor${this.name ? ` ${this.name}` : ''} ${shapeStr(this.shape)} was used after its scope ended (return it from withScope or keep() it)`);
    }
  }

  /** The single value of a one-element tensor. */
  item(): number {
    this.assertLive();
    if (this.size !== 1) throw new Error(`item() needs a one-element tensor, got shape ${shapeStr(this.shape)}`);
    return this.data[0]!;
  }

  toArray(): number[] {
    this.assertLive();
    return Array.from(this.data);
  }

  /** Detached copy with plain (unpooled) storage. */
  clone(): Tensor {
    this.assertLive();
    return new Tensor(this.data.slice(), this.shape, false, this.name);
  }

  /** Same storage, no gradient history. */
  detach(): Tensor {
    this.assertLive();
    return new Tensor(this.data, this.shape, false, this.name);
  }

  toString(): string {
    return `Tensor(${this.name ?? ''}${shapeStr(this.shape)}, ${this.dtype}${this.requiresGrad ? ', grad' : ''})`;
  }
}
