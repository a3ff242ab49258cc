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
 *
 * Eager release (startRelease): every pooled buffer carries the allocation clock's value when it was
 * taken (the autograd tape's count of recorded ops). A backward pass walking the tape down can give
 * back, after each op, every buffer taken at or after that op's record time that no gradient still
 * holds: no op recorded earlier can have seen it. A step's peak is then the forward activations plus
 * the gradients in flight, not every temporary of forward and backward together.
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
  /** Bytes of pooled buffers held by scopes (taken, not yet given back). */
  liveBytes = 0;
  /** The most liveBytes reached since the last resetPoolPeak(). */
  peakLiveBytes = 0;

  take(bytes: number): Buffer {
    const size = bucketBytes(bytes);
    this.liveBytes += size;
    if (this.liveBytes > this.peakLiveBytes) this.peakLiveBytes = this.liveBytes;
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
    this.liveBytes -= buf.byteLength;
  }

  /** A buffer kept past the outermost scope leaves the pool's accounting. */
  forget(buf: Buffer): void {
    this.liveBytes -= buf.byteLength;
  }

  clear(): void {
    this.free.clear();
    this.pooledBytes = 0;
  }
}

class Scope {
  /** Pooled buffers taken in this scope (or handed up by a child), with their allocation stamp. */
  readonly owned = new Map<Buffer, number>();
  readonly members: Disposable[] = [];
  readonly kept = new Set<Buffer>();
  /** While a release runs: the holders of each buffer, and the buffers taken since it started. */
  release: { holders: Map<Buffer, Disposable[]>; fresh: [Buffer, number][] } | null = null;
}

const pool = new Pool();
const scopes: Scope[] = [];
/** MOE_TUNE_MEMTRACE=1: pooled bytes taken, by call site (the two frames above the allocation). */
const trace: Map<string, number> | null = typeof process !== 'undefined' && process.env['MOE_TUNE_MEMTRACE'] ? new Map() : null;

function traceTake(bytes: number): void {
  const frames = (new Error().stack ?? '').split('\n').slice(1).map((l) => l.trim())
    .filter((l) => l.startsWith('at ') && !/[/\\]tensor[/\\](memory|tensor)\.[jt]s/.test(l));
  const site = frames.slice(0, 2).map((l) => l.slice(3).replace(/\(.*?([^/\\]+[/\\][^/\\]+:\d+):\d+\)$/, '($1)')).join(' < ');
  trace!.set(site, (trace!.get(site) ?? 0) + bytes);
}

/**
 * With MOE_TUNE_MEMTRACE=1: the pooled bytes taken since the last reset, by call site, largest
 * first (what a step allocates, op by op); null when tracing is off.
 */
export function allocationTrace(reset = false): [string, number][] | null {
  if (trace === null) return null;
  const out = [...trace].sort((a, b) => b[1] - a[1]);
  if (reset) trace.clear();
  return out;
}
let clock: () => number = () => 0;

/** Sets where allocation stamps come from (the tape: the number of ops recorded so far). */
export function setAllocationClock(c: () => number): void {
  clock = c;
}
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
  if (trace) traceTake(buf.byteLength);
  pooledBuffers.add(buf);
  const stamp = clock();
  top.owned.set(buf, stamp);
  top.release?.fresh.push([buf, stamp]);
  const arr = view(dtype, buf, n);
  if (zero) arr.fill(0);
  return arr;
}

/** Registers a tensor (or other holder of a pooled buffer) with the innermost scope. */
export function track(t: Disposable): void {
  const top = scopes[scopes.length - 1];
  if (top !== undefined && t.buffer !== null) {
    top.members.push(t);
    if (top.release) holdersAdd(top.release.holders, t);
  }
}

function holdersAdd(h: Map<Buffer, Disposable[]>, t: Disposable): void {
  const list = h.get(t.buffer!);
  if (list === undefined) h.set(t.buffer!, [t]);
  else list.push(t);
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
      if (parent !== undefined) {
        parent.members.push(m);
        if (parent.release) holdersAdd(parent.release.holders, m);
      }
    } else m.markDisposed();
  }
  for (const [buf, stamp] of scope.owned) {
    if (kept.has(buf)) {
      if (parent !== undefined) {
        parent.owned.set(buf, stamp);
        parent.release?.fresh.push([buf, stamp]); // a release under way there may give it back
      }
      else pool.forget(buf); // with no parent scope the kept buffer leaves the pool's accounting
    } else pool.give(buf);
  }
  return result;
}

/**
 * The pool's memory: `pooledBytes` parked for reuse, `liveBytes` held by scopes now, `peakLiveBytes`
 * the most held at once since resetPoolPeak() (the pool's footprint is at least pooled + live).
 */
/**
 * Gives a forward temporary's buffer back to the pool now, before its scope ends: for a tensor whose
 * last reader has run and that no recorded backward reads (its shape and identity stay usable for
 * the tape; its values do not). Only when the innermost scope owns the buffer and keep() did not
 * keep it; every tensor over the buffer is disposed. Returns whether the buffer went back.
 */
export function releaseNow(t: Disposable): boolean {
  const scope = scopes[scopes.length - 1];
  const buf = t.buffer;
  if (scope === undefined || buf === null || !scope.owned.has(buf) || scope.kept.has(buf)) return false;
  scope.owned.delete(buf);
  for (const m of scope.members) if (m.buffer === buf) m.markDisposed();
  scope.release?.holders.delete(buf);
  pool.give(buf);
  return true;
}

/** Gives back eagerly the buffers of the innermost scope a backward pass no longer needs. */
export interface BufferReleaser {
  /**
   * Gives back every buffer of the scope stamped at or after `from` (and every one taken since the
   * release started) that `live` does not claim and keep() did not keep; their tensors are disposed.
   * A claimed buffer is looked at again on the next call.
   */
  release(from: number, live: (buf: Buffer) => boolean): void;
  /** Stops tracking (call once, when the backward pass is done). */
  end(): void;
}

/** A releaser for the innermost scope, or null outside any scope (nothing there is pooled). */
export function startRelease(): BufferReleaser | null {
  const scope = scopes[scopes.length - 1];
  if (scope === undefined || scope.release !== null) return null;
  const holders = new Map<Buffer, Disposable[]>();
  for (const m of scope.members) if (m.buffer !== null) holdersAdd(holders, m);
  const state = { holders, fresh: [] as [Buffer, number][] };
  scope.release = state;
  // the scope's buffers by stamp, newest first: each release() call takes a prefix
  const byStamp = [...scope.owned].sort((a, b) => b[1] - a[1]);
  let next = 0;
  let deferred: [Buffer, number][] = [];
  const give = (buf: Buffer): void => {
    scope.owned.delete(buf);
    for (const m of holders.get(buf) ?? []) m.markDisposed();
    holders.delete(buf);
    pool.give(buf);
  };
  return {
    release(from, live) {
      const look = deferred.concat(state.fresh);
      state.fresh = [];
      while (next < byStamp.length && byStamp[next]![1] >= from) look.push(byStamp[next++]!);
      deferred = [];
      for (const e of look) {
        const [buf, stamp] = e;
        // gone already, or given back and taken again since (then it is a new entry)
        if (scope.owned.get(buf) !== stamp || scope.kept.has(buf)) continue;
        if (live(buf)) deferred.push(e);
        else give(buf);
      }
    },
    end() {
      if (scope.release === state) scope.release = null;
    },
  };
}

export function poolStats(): { pooledBytes: number; liveBytes: number; peakLiveBytes: number; scopes: number } {
  return { pooledBytes: pool.pooledBytes, liveBytes: pool.liveBytes, peakLiveBytes: pool.peakLiveBytes, scopes: scopes.length };
}

/** Starts a new peak for poolStats().peakLiveBytes (from the bytes held now). */
export function resetPoolPeak(): void {
  pool.peakLiveBytes = pool.liveBytes;
}

/** Drops every pooled buffer (for tests and for shrinking memory after a large job). */
export function clearPool(): void {
  pool.clear();
}
