/**
 * Engine benchmark (issue 4): GEMM GFLOP/s and milliseconds per call of the main fused kernels,
 * on each backend asked for, at the tiny-MoE shapes (T = 512 tokens, D = 256, F = 512, vocab 2000,
 * 4 heads of 64). Each figure is the best of several timed batches (the machine is shared).
 *
 *   npm run bench -- --engine
 */
import type { Backend } from '../src/tensor/backend.js';
import { jsBackend } from '../src/tensor/backends/js/index.js';
import { loadNativeBackend } from '../src/tensor/backends/native/index.js';

export interface EngineBenchOptions {
  /** Backend names: 'native', 'js'. */
  backends: string[];
  /** Milliseconds spent per measurement (default 400). */
  budgetMs?: number;
  /** Print the tables (default true). */
  print?: boolean;
}

export interface GemmResult {
  shape: string;
  M: number;
  N: number;
  K: number;
  trans: string;
  /** GFLOP/s per backend; null when skipped (js at 2048: ~10 s a call). */
  gflops: Record<string, number | null>;
}

export interface KernelResult {
  kernel: string;
  shape: string;
  /** Milliseconds per call per backend. */
  ms: Record<string, number | null>;
}

export interface EngineBenchResult {
  backends: { name: string; threads: number }[];
  unavailable: Record<string, string>;
  gemm: GemmResult[];
  kernels: KernelResult[];
}

/** Best-of-batches milliseconds per call, within about budgetMs. */
function timeCall(fn: () => void, budgetMs: number): number {
  fn();
  let t0 = performance.now();
  fn();
  const once = Math.max(performance.now() - t0, 1e-4);
  const batches = 5;
  const reps = Math.max(1, Math.floor(budgetMs / batches / once));
  let best = Infinity;
  for (let b = 0; b < batches; b++) {
    t0 = performance.now();
    for (let i = 0; i < reps; i++) fn();
    best = Math.min(best, (performance.now() - t0) / reps);
    if (once * reps * (b + 1) > 4 * budgetMs) break;
  }
  return best;
}

function rand(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = lo + ((hi - lo) * s) / 4294967296;
  }
  return a;
}

function ints(n: number, max: number, seed: number): Int32Array {
  const r = rand(n, seed, 0, 1);
  return Int32Array.from(r, (v) => Math.min(max - 1, Math.floor(v * max)));
}

const GEMM_SHAPES: [number, number, number, boolean, boolean][] = [
  [512, 512, 512, false, false],
  [1024, 1024, 1024, false, false],
  [2048, 2048, 2048, false, false],
  [512, 512, 256, false, false],
  [512, 512, 256, false, true],
  [512, 512, 256, true, false],
  [1024, 512, 256, false, false],
  [1024, 512, 256, false, true],
  [1024, 512, 256, true, false],
  [128, 512, 256, false, false],
  [128, 512, 256, false, true],
  [128, 512, 256, true, false],
];

/** One kernel benchmark: a name, its shape, and a closure that runs it once on a backend. */
interface KernelCase {
  kernel: string;
  shape: string;
  make(b: Backend): () => void;
}

function kernelCases(): KernelCase[] {
  const T = 512;
  const D = 256;
  const F = 512;
  const V = 2000;
  const H = 4;
  const Dh = 64;
  const x = rand(T * D, 1);
  const w = rand(D, 2, 0.5, 1.5);
  const dy = rand(T * D, 3);
  const rstd = new Float32Array(T);
  const outTD = new Float32Array(T * D);
  const dw = new Float32Array(D);
  const q = rand(T * H * Dh, 4);
  const k = rand(T * H * Dh, 5);
  const v = rand(T * H * Dh, 6);
  const cos = rand((T * Dh) / 2, 7);
  const sin = rand((T * Dh) / 2, 8);
  const attOut = new Float32Array(T * H * Dh);
  const lse = new Float32Array(H * T);
  const dq = new Float32Array(T * H * Dh);
  const dk = new Float32Array(T * H * Dh);
  const dv = new Float32Array(T * H * Dh);
  const dout = rand(T * H * Dh, 18);
  const g = rand(T * F * 2, 9, -4, 4);
  const u = rand(T * F * 2, 10);
  const gOut = new Float32Array(T * F * 2);
  const dg = new Float32Array(T * F * 2);
  const du = new Float32Array(T * F * 2);
  const logits = rand(T * V, 11, -4, 4);
  const probs = new Float32Array(T * V);
  const dlogits = new Float32Array(T * V);
  const targets = ints(T, V, 12);
  const losses = new Float32Array(T);
  const xlse = new Float32Array(T);
  const dl = new Float32Array(T).fill(1 / T);
  const routes = ints(2 * T, T, 13);
  const gathered = new Float32Array(2 * T * D);
  const gates = rand(2 * T, 14, 0, 1);
  const n = 1 << 20;
  const p = rand(n, 15);
  const grad = rand(n, 16);
  const m = new Float32Array(n);
  const vv = new Float32Array(n);
  const routerLogits = rand(T * 8, 17, -3, 3);
  const routerProbs = new Float32Array(T * 8);
  return [
    { kernel: 'rmsnormForward', shape: `${T}x${D}`, make: (b) => () => b.rmsnormForward(x, w, 1e-5, T, D, outTD, rstd) },
    { kernel: 'rmsnormBackward', shape: `${T}x${D}`, make: (b) => () => b.rmsnormBackward(dy, x, w, rstd, T, D, outTD, dw) },
    { kernel: 'rope', shape: `B=1 T=${T} H=${H} Dh=${Dh}`, make: (b) => () => b.rope(q, cos, sin, 1, T, H, Dh, false, dq) },
    {
      kernel: 'attentionForward', shape: `B=1 T=S=${T} H=${H} Dh=${Dh} causal`,
      make: (b) => () => b.attentionForward(q, k, v, 1, T, T, H, H, Dh, 0.125, true, attOut, lse),
    },
    {
      kernel: 'attentionBackward', shape: `B=1 T=S=${T} H=${H} Dh=${Dh} causal`,
      make: (b) => {
        b.attentionForward(q, k, v, 1, T, T, H, H, Dh, 0.125, true, attOut, lse);
        return () => b.attentionBackward(q, k, v, attOut, lse, dout, 1, T, T, H, H, Dh, 0.125, true, dq, dk, dv);
      },
    },
    { kernel: 'swigluForward', shape: `${T}x2x${F}`, make: (b) => () => b.swigluForward(g, u, gOut, T * F * 2) },
    { kernel: 'swigluBackward', shape: `${T}x2x${F}`, make: (b) => () => b.swigluBackward(g, u, gOut, dg, du, T * F * 2) },
    { kernel: 'softmaxForward', shape: `${T}x8 (router)`, make: (b) => () => b.softmaxForward(routerLogits, T, 8, routerProbs) },
    { kernel: 'softmaxForward', shape: `${T}x${V}`, make: (b) => () => b.softmaxForward(logits, T, V, probs) },
    { kernel: 'softmaxBackward', shape: `${T}x${V}`, make: (b) => () => b.softmaxBackward(probs, logits, T, V, dlogits) },
    {
      kernel: 'crossEntropyForward', shape: `${T}x${V}`,
      make: (b) => () => b.crossEntropyForward(logits, targets, T, V, -100, losses, xlse),
    },
    {
      kernel: 'crossEntropyBackward', shape: `${T}x${V}`,
      make: (b) => {
        b.crossEntropyForward(logits, targets, T, V, -100, losses, xlse);
        return () => b.crossEntropyBackward(logits, targets, xlse, dl, T, V, -100, dlogits);
      },
    },
    { kernel: 'gatherRows', shape: `${2 * T} of ${T}x${D}`, make: (b) => () => b.gatherRows(x, routes, 2 * T, D, gathered) },
    {
      kernel: 'scatterAddRows', shape: `${2 * T} into ${T}x${D}, weighted`,
      make: (b) => () => b.scatterAddRows(gathered, routes, gates, 2 * T, D, outTD),
    },
    { kernel: 'binary add', shape: `${T}x${D} + ${D}`, make: (b) => () => b.binary('add', x, [T, D], w, [D], outTD, [T, D]) },
    { kernel: 'adamw', shape: '1M', make: (b) => () => b.adamw(p, grad, m, vv, n, 1e-3, 0.9, 0.999, 1e-8, 0.01, 0.1, 0.001, 1) },
  ];
}

function pad(s: string, n: number): string {
  return s.length >= n ? s : s + ' '.repeat(n - s.length);
}

function fmt(x: number | null | undefined, digits: number): string {
  return x === null || x === undefined ? '-' : x.toFixed(digits);
}

export async function runEngineBench(opts: EngineBenchOptions): Promise<EngineBenchResult> {
  const budget = opts.budgetMs ?? 400;
  const print = opts.print ?? true;
  const backends: Backend[] = [];
  const unavailable: Record<string, string> = {};
  for (const name of opts.backends) {
    if (name === 'js') backends.push(jsBackend);
    else if (name === 'native') {
      const r = loadNativeBackend();
      if ('backend' in r) backends.push(r.backend);
      else unavailable[name] = r.error;
    } else {
      throw new Error(`runEngineBench: unknown backend '${name}' (expected native or js)`);
    }
  }

  const gemm: GemmResult[] = [];
  for (const [M, N, K, ta, tb] of GEMM_SHAPES) {
    const A = rand(M * K, M + K);
    const B = rand(K * N, N + K);
    const C = new Float32Array(M * N);
    const flop = 2 * M * N * K;
    const trans = `${ta ? 'T' : 'N'}${tb ? 'T' : 'N'}`;
    const row: GemmResult = { shape: `[${M}x${K}]·[${K}x${N}]`, M, N, K, trans, gflops: {} };
    for (const b of backends) {
      if (b.name === 'js' && flop > 4e9) {
        row.gflops[b.name] = null;
        continue;
      }
      const ms = timeCall(() => b.gemm(ta, tb, M, N, K, 1, A, B, 0, C), b.name === 'js' ? budget * 2 : budget);
      row.gflops[b.name] = flop / (ms * 1e6);
    }
    gemm.push(row);
  }

  const kernels: KernelResult[] = [];
  for (const c of kernelCases()) {
    const row: KernelResult = { kernel: c.kernel, shape: c.shape, ms: {} };
    for (const b of backends) row.ms[b.name] = timeCall(c.make(b), budget);
    kernels.push(row);
  }

  const result: EngineBenchResult = {
    backends: backends.map((b) => ({ name: b.name, threads: b.threads })),
    unavailable,
    gemm,
    kernels,
  };
  if (print) printTables(result);
  return result;
}

function printTables(r: EngineBenchResult): void {
  const names = r.backends.map((b) => b.name);
  const lines: string[] = [];
  lines.push(`engine bench: ${r.backends.map((b) => `${b.name} (${b.threads} thread${b.threads === 1 ? '' : 's'})`).join(', ')}`);
  for (const [name, why] of Object.entries(r.unavailable)) lines.push(`  ${name} unavailable: ${why}`);
  lines.push('');
  lines.push(pad('GEMM', 24) + pad('op', 4) + names.map((n) => pad(`${n} GFLOP/s`, 16)).join(''));
  for (const g of r.gemm) lines.push(pad(g.shape, 24) + pad(g.trans, 4) + names.map((n) => pad(fmt(g.gflops[n], 1), 16)).join(''));
  lines.push('');
  const speed = names.includes('native') && names.includes('js');
  lines.push(pad('kernel', 22) + pad('shape', 32) + names.map((n) => pad(`${n} ms`, 12)).join('') + (speed ? 'js / native' : ''));
  for (const k of r.kernels) {
    const ratio = speed && k.ms['native'] && k.ms['js'] ? `${(k.ms['js'] / k.ms['native']).toFixed(0)}x` : '';
    lines.push(pad(k.kernel, 22) + pad(k.shape, 32) + names.map((n) => pad(fmt(k.ms[n], 3), 12)).join('') + ratio);
  }
  console.log(lines.join('\n'));
}
