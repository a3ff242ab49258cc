/**
 * Buffer pool with scopes, so a training step allocates no new memory once warm (llm.c keeps
 * preallocated activations; we get the same effect without fixing the shapes up front).
 *
 * Inside `withScope(fn)` every tensor buffer comes from a pool of size buckets (powers of two and
 * their 1.5x midpoints, so MoE groups whose token counts change from step to step still reuse
 * buffers). When the scope ends, the buffers of all tensors created inside it go back to the
 * pool, except those reachable from the value `fn` returns or from tensors passed to `keep()`.
 * Outside any scope, allocation is plain `new Float32Array` (parameters, optimizer state).
 *
 * A tensor whose buffer went back to the pool is marked disposed; reading it throws.
 */
import type { DType } from './dtype.js';

type Buffer = ArrayBuffer;

function bucketBytes(bytes: number): number {
  if (bytes <= 64) return 64;
  const p = 2 ** Math.ceil(Math.log2(bytes));
  const mid = (p / 4) * 3;
  return bytes <= mid ? mid : p;
}

/** Anything the scope can dispose: it owns (or views) one pooled buffer. */
export interface Disposable {
  readonly buffer: Buffer | null;
  markDisposed(): void;
}

class Pool {
  private free = new Map<number, Buffer[]>();
  /** Bytes currently parked in the pool (for memory reports). */
  pooledBytes = 0;

  take(bytes: number): Buffer {
    const size = bucketBytes(bytes);
    const list = this.free.get(size);
    if (list !== undefined && list.length > 0) {
      this.pooledBytes -= size;
      return list.pop()!;
    }
    return new ArrayBuffer(size);
  }

  give(buf: Buffer): void {
    const list = this.free.get(buf.byteLength);
    if (list === undefined) this.free.set(buf.byteLength, [buf]);
    else list.push(buf);
    this.pooledBytes += buf.byteLength;
  }

  clear(): void {
    this.free.clear();
    this.pooledBytes = 0;
  }
}

class Scope {
  readonly owned: Buffer[] = [];
  readonly members: Disposable[] = [];
  readonly kept = new Set<Buffer>();
}

const pool = new Pool();
const scopes: Scope[] = [];
const pooledBuffers = new WeakSet<Buffer>();

/** True when the buffer came from the pool (so a scope may recycle it). */
export function isPooled(buf: ArrayBufferLike): boolean {
  return pooledBuffers.has(buf as Buffer);
}

export function inScope(): boolean {
  return scopes.length > 0;
}

function bytesPer(dtype: DType): number {
  return dtype === 'float64' ? 8 : 4;
}

function view(dtype: DType, buf: Buffer, n: number): Float32Array | Float64Array | Int32Array {
  if (dtype === 'float32') return new Float32Array(buf, 0, n);
  if (dtype === 'float64') return new Float64Array(buf, 0, n);
  return new Int32Array(buf, 0, n);
}

/**
 * Allocates n elements of dtype. Inside a scope the memory is pooled and NOT zeroed unless
 * `zero` is set; outside it is a fresh zeroed array. `persistent` forces a fresh array even inside
 * a scope (parameter gradients, optimizer state).
 */
export function allocate(dtype: DType, n: number, zero: boolean, persistent = false): Float32Array | Float64Array | Int32Array {
  const top = scopes[scopes.length - 1];
  if (top === undefined || persistent) {
    if (dtype === 'float32') return new Float32Array(n);
    if (dtype === 'float64') return new Float64Array(n);
    return new Int32Array(n);
  }
  const buf = pool.take(Math.max(1, n) * bytesPer(dtype));
  pooledBuffers.add(buf);
  top.owned.push(buf);
  const arr = view(dtype, buf, n);
  if (zero) arr.fill(0);
  return arr;
}

/** Registers a tensor (or other holder of a pooled buffer) with the innermost scope. */
export function track(t: Disposable): void {
  const top = scopes[scopes.length - 1];
  if (top !== undefined && t.buffer !== null) top.members.push(t);
}

/** Keeps a tensor's buffer alive past the innermost scope's end (it moves to the parent scope). */
export function keep<T extends Disposable>(t: T): T {
  const top = scopes[scopes.length - 1];
  if (top !== undefined && t.buffer !== null) top.kept.add(t.buffer);
  return t;
}

/** Collects the pooled buffers reachable from a scope's return value (tensors, arrays, plain objects). */
function collectKept(value: unknown, into: Set<Buffer>, seen: Set<unknown>): void {
  if (value === null || typeof value !== 'object' || seen.has(value)) return;
  seen.add(value);
  const maybe = value as Partial<Disposable>;
  if ('markDisposed' in maybe && maybe.buffer) {
    into.add(maybe.buffer);
    return;
  }
  if (Array.isArray(value)) for (const v of value) collectKept(v, into, seen);
  else if (value instanceof Map) for (const v of value.values()) collectKept(v, into, seen);
  else if (Object.getPrototypeOf(value) === Object.prototype) for (const v of Object.values(value)) collectKept(v, into, seen);
}

export type ScopeHook = { onEnter(): number; onExit(mark: number): void };
const hooks: ScopeHook[] = [];
/** Lets the autograd tape truncate itself when a scope ends (it must not outlive its buffers). */
export function addScopeHook(h: ScopeHook): void {
  hooks.push(h);
}

/**
 * Runs fn in a new allocation scope. Tensors created inside are released at the end unless returned
 * (directly, in an array, Map or plain object) or kept with keep(). Async functions are not allowed
 * (a scope must not interleave with other work).
 */
export function withScope<T>(fn: () => T): T {
  const scope = new Scope();
  const marks = hooks.map((h) => h.onEnter());
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
    if (result instanceof Promise) throw new Error('withScope: the function must be synchronous');
  } finally {
    scopes.pop();
    hooks.forEach((h, i) => h.onExit(marks[i]!));
  }
  const kept = scope.kept;
  collectKept(result, kept, new Set());
  const parent = scopes[scopes.length - 1];
  for (const m of scope.members) {
    if (m.buffer !== null && kept.has(m.buffer)) {
      if (parent !== undefined) parent.members.push(m);
    } else m.markDisposed();
  }
  for (const buf of scope.owned) {
    if (kept.has(buf)) {
      if (parent !== undefined) {
        parent.owned.push(buf);
      }
      // with no parent scope the kept buffer simply leaves the pool's accounting
    } else pool.give(buf);
  }
  return result;
}

export function poolStats(): { pooledBytes: number; scopes: number } {
  return { pooledBytes: pool.pooledBytes, scopes: scopes.length };
}

/** Drops every pooled buffer (for tests and for shrinking memory after a large job). */
export function clearPool(): void {
  pool.clear();
}
