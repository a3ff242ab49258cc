/**
 * The native backend: the C++ kernels of native/src (built by `npm install` into
 * build/Release/moe_tune_native.node) behind the `Backend` interface. Every method forwards its
 * arguments unchanged to the addon function of the same name; the addon checks them and throws
 * one-line errors. Float32 only: a Float64Array argument is refused (float64 runs on js).
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import type { Backend, BinaryOp, FloatArray, ReduceOp, UnaryOp } from '../../backend.js';
import { jsBackend } from '../js/index.js';

/** The functions the addon exports (native/src/binding.cc). */
interface NativeAddon {
  threads(): number;
  configure(threads: number): number;
  kernelName(): string;
  /** The compile-time ISA path: "avx512", "avx2", "avx" or "portable" (absent in addons from older sources). */
  buildIsa?(): string;
  gemm: Backend['gemm'];
  binary: Backend['binary'];
  unary: Backend['unary'];
  unaryBackward: Backend['unaryBackward'];
  axpby: Backend['axpby'];
  fill: Backend['fill'];
  reduce: Backend['reduce'];
  sumSquares: Backend['sumSquares'];
  rmsnormForward: Backend['rmsnormForward'];
  rmsnormBackward: Backend['rmsnormBackward'];
  rope: Backend['rope'];
  attentionForward: Backend['attentionForward'];
  attentionBackward: Backend['attentionBackward'];
  swigluForward: Backend['swigluForward'];
  swigluBackward: Backend['swigluBackward'];
  softmaxForward: Backend['softmaxForward'];
  softmaxBackward: Backend['softmaxBackward'];
  logSoftmaxForward: Backend['logSoftmaxForward'];
  logSoftmaxBackward: Backend['logSoftmaxBackward'];
  crossEntropyForward: Backend['crossEntropyForward'];
  crossEntropyBackward: Backend['crossEntropyBackward'];
  gatherRows: Backend['gatherRows'];
  scatterAddRows: Backend['scatterAddRows'];
  gatherRowDot: Backend['gatherRowDot'];
  takeAlongRows: Backend['takeAlongRows'];
  takeAlongRowsBackward: Backend['takeAlongRowsBackward'];
  adamw: Backend['adamw'];
  // optional kernels (an addon built from older sources may lack them)
  nf4Gemm?: NonNullable<Backend['nf4Gemm']>;
  gemmGrouped?: NonNullable<Backend['gemmGrouped']>;
  nf4GemmGrouped?: NonNullable<Backend['nf4GemmGrouped']>;
  decodeStored?: NonNullable<Backend['decodeStored']>;
  nf4QuantizeStored?: NonNullable<Backend['nf4QuantizeStored']>;
  nf4QuantizeScales?: NonNullable<Backend['nf4QuantizeScales']>;
  nf4QuantizeIsa?: NonNullable<Backend['nf4QuantizeIsa']>;
  // required of the Backend; an addon built before them runs the js reference kernels instead
  routeTopK?: Backend['routeTopK'];
  scatterRows?: Backend['scatterRows'];
  scatterRowsBackward?: Backend['scatterRowsBackward'];
  routeTopKBackward?: Backend['routeTopKBackward'];
}

const KERNELS = [
  'gemm', 'binary', 'unary', 'unaryBackward', 'axpby', 'fill', 'reduce', 'sumSquares', 'rmsnormForward',
  'rmsnormBackward', 'rope', 'attentionForward', 'attentionBackward', 'swigluForward', 'swigluBackward',
  'softmaxForward', 'softmaxBackward', 'logSoftmaxForward', 'logSoftmaxBackward', 'crossEntropyForward',
  'crossEntropyBackward', 'gatherRows', 'scatterAddRows', 'gatherRowDot', 'takeAlongRows',
  'takeAlongRowsBackward', 'adamw',
] as const satisfies readonly (keyof NativeAddon)[];

/** The package root: the nearest parent directory whose package.json is moe-tune's. */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: unknown }).name === 'moe-tune') return dir;
      } catch {
        // an unreadable package.json is not ours; keep walking up
      }
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error('moe-tune package root not found above ' + fileURLToPath(import.meta.url));
    dir = parent;
  }
}

/**
 * Absolute path of the compiled addon (whether or not it exists). MOE_TUNE_NATIVE_ADDON, when set,
 * names another build of it (kernel development: a build outside build/ can be tried without
 * replacing the one other processes load; the per-ISA test builds of scripts/build-isa-variants.mjs,
 * build/isa-<isa>/moe_tune_native.node).
 */
export function nativeAddonPath(): string {
  const override = process.env['MOE_TUNE_NATIVE_ADDON'];
  if (override) return override;
  return join(packageRoot(), 'build', 'Release', 'moe_tune_native.node');
}

/** Thread count asked for by MOE_TUNE_THREADS, or an error line; undefined when unset. */
function threadsFromEnv(): number | { error: string } | undefined {
  const raw = process.env['MOE_TUNE_THREADS'];
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || !Number.isInteger(n) || n < 1 || n > 1024) {
    return { error: `MOE_TUNE_THREADS='${raw}' is not an integer between 1 and 1024` };
  }
  return n;
}

function firstLine(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return msg.split('\n')[0] ?? msg;
}

/** What the loaded addon was compiled for. */
export interface NativeBuildInfo {
  /** The addon file. */
  path: string;
  /** Its compile-time kernel path: "avx512", "avx2" (AVX2 + FMA), "avx", "portable"; "unknown" for an addon from older sources. */
  isa: string;
  /** Its GEMM micro-kernel, e.g. "avx512f-12x32". */
  kernel: string;
}

let cached: { backend: Backend; info: NativeBuildInfo } | { error: string } | undefined;

/**
 * Loads the addon once and returns the backend, or `{ error }` with one line saying why it is
 * unavailable (the registry adds how to fix it).
 */
export function loadNativeBackend(): { backend: Backend } | { error: string } {
  cached ??= load();
  return 'backend' in cached ? { backend: cached.backend } : cached;
}

/** The build of the addon the native backend uses (see NativeBuildInfo), or null when it does not load. */
export function nativeBuildInfo(): NativeBuildInfo | null {
  cached ??= load();
  return 'info' in cached ? cached.info : null;
}

function load(): { backend: Backend; info: NativeBuildInfo } | { error: string } {
  let path: string;
  try {
    path = nativeAddonPath();
  } catch (e) {
    return { error: firstLine(e) };
  }
  if (!existsSync(path)) return { error: `native addon not built: ${path} is missing` };
  const threads = threadsFromEnv();
  if (typeof threads === 'object') return { error: threads.error };
  let addon: NativeAddon;
  try {
    addon = createRequire(import.meta.url)(path) as NativeAddon;
  } catch (e) {
    return { error: `native addon ${path} failed to load: ${firstLine(e)}` };
  }
  const missing = KERNELS.filter((k) => typeof addon[k] !== 'function');
  if (missing.length > 0) {
    return { error: `native addon ${path} is out of date (it lacks ${missing.join(', ')})` };
  }
  const size = threads === undefined ? addon.threads() : addon.configure(threads);
  const info: NativeBuildInfo = {
    path,
    isa: typeof addon.buildIsa === 'function' ? addon.buildIsa() : 'unknown',
    kernel: addon.kernelName(),
  };
  return { backend: makeBackend(addon, size), info };
}

function makeBackend(a: NativeAddon, threads: number): Backend {
  const backend: Backend = {
    name: 'native',
    threads,
    gemm(transA: boolean, transB: boolean, M: number, N: number, K: number, alpha: number, A: FloatArray,
      B: FloatArray, beta: number, C: FloatArray): void {
      a.gemm(transA, transB, M, N, K, alpha, A, B, beta, C);
    },
    binary(op: BinaryOp, x: FloatArray, xShape: readonly number[], y: FloatArray, yShape: readonly number[],
      out: FloatArray, outShape: readonly number[]): void {
      a.binary(op, x, xShape, y, yShape, out, outShape);
    },
    unary(op: UnaryOp, x: FloatArray, out: FloatArray, n: number): void {
      a.unary(op, x, out, n);
    },
    unaryBackward(op: UnaryOp, x: FloatArray, y: FloatArray, dy: FloatArray, dx: FloatArray, n: number): void {
      a.unaryBackward(op, x, y, dy, dx, n);
    },
    axpby(alpha: number, x: FloatArray, beta: number, out: FloatArray, n: number): void {
      a.axpby(alpha, x, beta, out, n);
    },
    fill(out: FloatArray, value: number, n: number): void {
      a.fill(out, value, n);
    },
    reduce(op: ReduceOp, x: FloatArray, outer: number, axisLen: number, inner: number, out: FloatArray): void {
      a.reduce(op, x, outer, axisLen, inner, out);
    },
    sumSquares(x: FloatArray, n: number): number {
      return a.sumSquares(x, n);
    },
    rmsnormForward(x: FloatArray, w: FloatArray, eps: number, rows: number, dim: number, out: FloatArray,
      rstd: FloatArray): void {
      a.rmsnormForward(x, w, eps, rows, dim, out, rstd);
    },
    rmsnormBackward(dy: FloatArray, x: FloatArray, w: FloatArray, rstd: FloatArray, rows: number, dim: number,
      dx: FloatArray, dw: FloatArray): void {
      a.rmsnormBackward(dy, x, w, rstd, rows, dim, dx, dw);
    },
    rope(x: FloatArray, cos: FloatArray, sin: FloatArray, B: number, T: number, H: number, Dh: number,
      inverse: boolean, out: FloatArray): void {
      a.rope(x, cos, sin, B, T, H, Dh, inverse, out);
    },
    attentionForward(q: FloatArray, k: FloatArray, v: FloatArray, B: number, T: number, S: number, H: number,
      Hkv: number, Dh: number, scale: number, causal: boolean, out: FloatArray, lse: FloatArray): void {
      a.attentionForward(q, k, v, B, T, S, H, Hkv, Dh, scale, causal, out, lse);
    },
    attentionBackward(q: FloatArray, k: FloatArray, v: FloatArray, out: FloatArray, lse: FloatArray,
      dout: FloatArray, B: number, T: number, S: number, H: number, Hkv: number, Dh: number, scale: number,
      causal: boolean, dq: FloatArray, dk: FloatArray, dv: FloatArray): void {
      a.attentionBackward(q, k, v, out, lse, dout, B, T, S, H, Hkv, Dh, scale, causal, dq, dk, dv);
    },
    swigluForward(g: FloatArray, u: FloatArray, out: FloatArray, n: number): void {
      a.swigluForward(g, u, out, n);
    },
    swigluBackward(g: FloatArray, u: FloatArray, dout: FloatArray, dg: FloatArray, du: FloatArray, n: number): void {
      a.swigluBackward(g, u, dout, dg, du, n);
    },
    softmaxForward(x: FloatArray, rows: number, cols: number, out: FloatArray): void {
      a.softmaxForward(x, rows, cols, out);
    },
    softmaxBackward(y: FloatArray, dy: FloatArray, rows: number, cols: number, dx: FloatArray): void {
      a.softmaxBackward(y, dy, rows, cols, dx);
    },
    logSoftmaxForward(x: FloatArray, rows: number, cols: number, out: FloatArray): void {
      a.logSoftmaxForward(x, rows, cols, out);
    },
    logSoftmaxBackward(y: FloatArray, dy: FloatArray, rows: number, cols: number, dx: FloatArray): void {
      a.logSoftmaxBackward(y, dy, rows, cols, dx);
    },
    crossEntropyForward(logits: FloatArray, targets: Int32Array, rows: number, V: number, ignoreIndex: number,
      losses: FloatArray, lse: FloatArray): void {
      a.crossEntropyForward(logits, targets, rows, V, ignoreIndex, losses, lse);
    },
    crossEntropyBackward(logits: FloatArray, targets: Int32Array, lse: FloatArray, dlosses: FloatArray,
      rows: number, V: number, ignoreIndex: number, dlogits: FloatArray): void {
      a.crossEntropyBackward(logits, targets, lse, dlosses, rows, V, ignoreIndex, dlogits);
    },
    gatherRows(src: FloatArray, idx: Int32Array, n: number, dim: number, out: FloatArray): void {
      a.gatherRows(src, idx, n, dim, out);
    },
    scatterAddRows(src: FloatArray, idx: Int32Array, w: FloatArray | null, n: number, dim: number,
      out: FloatArray): void {
      a.scatterAddRows(src, idx, w, n, dim, out);
    },
    gatherRowDot(x: FloatArray, idx: Int32Array, y: FloatArray, n: number, dim: number, out: FloatArray): void {
      a.gatherRowDot(x, idx, y, n, dim, out);
    },
    takeAlongRows(x: FloatArray, idx: Int32Array, rows: number, cols: number, k: number, out: FloatArray): void {
      a.takeAlongRows(x, idx, rows, cols, k, out);
    },
    takeAlongRowsBackward(dy: FloatArray, idx: Int32Array, rows: number, cols: number, k: number,
      dx: FloatArray): void {
      a.takeAlongRowsBackward(dy, idx, rows, cols, k, dx);
    },
    adamw(p: FloatArray, g: FloatArray, m: FloatArray, v: FloatArray, n: number, lr: number, b1: number, b2: number,
      eps: number, wd: number, bc1: number, bc2: number, gradScale: number): void {
      a.adamw(p, g, m, v, n, lr, b1, b2, eps, wd, bc1, bc2, gradScale);
    },
    // an addon without scatterRows: zero the rows, then scatterAddRows (the same sums)
    scatterRows: typeof a.scatterRows === 'function' ? a.scatterRows.bind(a)
      : (src: FloatArray, idx: Int32Array, w: FloatArray | null, n: number, dim: number, rows: number, out: FloatArray): void => {
        a.fill(out, 0, rows * dim);
        a.scatterAddRows(src, idx, w, n, dim, out);
      },
    // an addon without scatterRowsBackward: the three kernels it fuses
    scatterRowsBackward: typeof a.scatterRowsBackward === 'function' ? a.scatterRowsBackward.bind(a)
      : (dy: FloatArray, idx: Int32Array, w: FloatArray, src: FloatArray, n: number, dim: number, _rows: number,
        dsrc: FloatArray | null, dw: FloatArray | null): void => {
        if (dw) a.gatherRowDot(dy, idx, src, n, dim, dw);
        if (dsrc) {
          a.gatherRows(dy, idx, n, dim, dsrc);
          a.binary('mul', dsrc, [n, dim], w, [n, 1], dsrc, [n, dim]);
        }
      },
    routeTopK: typeof a.routeTopK === 'function' ? a.routeTopK.bind(a) : jsBackend.routeTopK,
    routeTopKBackward: typeof a.routeTopKBackward === 'function' ? a.routeTopKBackward.bind(a) : jsBackend.routeTopKBackward,
  };
  const nf4 = a.nf4Gemm;
  if (typeof nf4 === 'function') {
    backend.nf4Gemm = (transW: boolean, M: number, N: number, K: number, A: Float32Array, codes: Uint8Array,
      code: Float32Array, blockSize: number, absmax: Float32Array | null, qabsmax: Uint8Array | null,
      nestedAbsmax: Float32Array | null, nestedCode: Float32Array | null, nestedBlockSize: number, offset: number,
      beta: number, C: Float32Array): void => {
      nf4(transW, M, N, K, A, codes, code, blockSize, absmax, qabsmax, nestedAbsmax, nestedCode, nestedBlockSize,
        offset, beta, C);
    };
  }
  const grouped = a.gemmGrouped;
  if (typeof grouped === 'function') {
    backend.gemmGrouped = (transA: boolean, transB: boolean, Ms: Int32Array, Ns: Int32Array, Ks: Int32Array,
      alpha: number, As: readonly FloatArray[], Bs: readonly FloatArray[], beta: number,
      Cs: readonly FloatArray[]): void => {
      grouped(transA, transB, Ms, Ns, Ks, alpha, As, Bs, beta, Cs);
    };
  }
  if (typeof a.nf4GemmGrouped === 'function') backend.nf4GemmGrouped = a.nf4GemmGrouped.bind(a);
  if (typeof a.decodeStored === 'function') backend.decodeStored = a.decodeStored.bind(a);
  if (typeof a.nf4QuantizeStored === 'function') backend.nf4QuantizeStored = a.nf4QuantizeStored.bind(a);
  if (typeof a.nf4QuantizeScales === 'function') backend.nf4QuantizeScales = a.nf4QuantizeScales.bind(a);
  if (typeof a.nf4QuantizeIsa === 'function') backend.nf4QuantizeIsa = a.nf4QuantizeIsa.bind(a);
  return backend;
}
