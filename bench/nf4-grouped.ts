/**
 * NF4 grouped GEMM micro-benchmark: the expert products of a QLoRA MoE step at the 6.9B
 * OLMoE-shaped checkpoint's sizes (bench/scale.ts: hidden 2048, expert intermediate 1024, 64
 * experts, top-8, 128 tokens, so ~16 rows per expert). One nf4GemmGrouped call over `experts`
 * NF4 weights, forward (C = A W^T) and input gradient (dX = dY W), for the gate / up weight
 * [1024, 2048] and the down weight [2048, 1024]; rows per expert 16 each, and a routed mix (4..28,
 * mean 16). GFLOP/s = 2 sum(M) N K / time, best of several batches, next to the dense float GEMM
 * of the same products (gemmGrouped) and the 1024^3 GEMM peak.
 *
 *   npm run bench -- --nf4
 */
import { dequantizeNf4, nf4GemmGrouped, quantizeNf4, type Nf4Weight } from '../src/quant/index.js';
import { getBackend, Rng } from '../src/tensor/index.js';

export interface Nf4BenchRow {
  weight: string;
  direction: 'forward' | 'dX';
  rows: string;
  nf4Gflops: number;
  denseGflops: number | null;
}

function timeBest(fn: () => void, budgetMs: number): number {
  fn();
  const t0 = performance.now();
  fn();
  const once = Math.max(performance.now() - t0, 1e-3);
  const reps = Math.max(1, Math.floor(budgetMs / 6 / once));
  let best = Infinity;
  for (let b = 0; b < 6; b++) {
    const t = performance.now();
    for (let i = 0; i < reps; i++) fn();
    best = Math.min(best, (performance.now() - t) / reps);
  }
  return best;
}

function gaussian(n: number, rng: Rng, std: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal() * std;
  return a;
}

export function runNf4GroupedBench(opts: { experts?: number; budgetMs?: number; print?: boolean } = {}): Nf4BenchRow[] {
  const E = opts.experts ?? 16;
  const budget = opts.budgetMs ?? 1500;
  const be = getBackend();
  const rng = new Rng(7);
  const rowsUniform = new Int32Array(E).fill(16);
  const rowsRouted = Int32Array.from({ length: E }, (_, i) => 4 + ((i * 7) % 25));  // 4..28
  const out: Nf4BenchRow[] = [];
  for (const [N, K, name] of [[1024, 2048, 'gate/up [1024, 2048]'], [2048, 1024, 'down [2048, 1024]']] as const) {
    const Ws: Nf4Weight[] = [];
    for (let e = 0; e < E; e++) Ws.push(quantizeNf4(gaussian(N * K, rng, 0.02), [N, K]));
    const dense = be.gemmGrouped ? Ws.map((w) => dequantizeNf4(w)) : null;
    for (const transW of [true, false]) {
      for (const [label, Ms] of [['16 each', rowsUniform], ['routed 4..28', rowsRouted]] as const) {
        const inner = transW ? K : N;
        const cols = transW ? N : K;
        const As = Array.from(Ms, (m) => gaussian(m * inner, rng, 1));
        const Cs = Array.from(Ms, (m) => new Float32Array(m * cols));
        let flop = 0;
        for (const m of Ms) flop += 2 * m * N * K;
        const ms = timeBest(() => nf4GemmGrouped(transW, Ms, N, K, As, Ws, 0, Cs), budget);
        let denseGflops: number | null = null;
        if (dense && be.gemmGrouped) {
          const Ns = new Int32Array(E).fill(cols);
          const Ks = new Int32Array(E).fill(inner);
          const dms = timeBest(() => be.gemmGrouped!(false, transW, Ms, Ns, Ks, 1, As, dense, 0, Cs), budget);
          denseGflops = flop / (dms * 1e6);
        }
        out.push({ weight: name, direction: transW ? 'forward' : 'dX', rows: label, nf4Gflops: flop / (ms * 1e6), denseGflops });
      }
    }
  }
  if (opts.print ?? true) {
    console.log(`nf4 grouped GEMM: ${E} experts, backend ${be.name} (${be.threads} threads)`);
    console.log('weight                 direction  rows          NF4 GFLOP/s  dense GFLOP/s');
    for (const r of out) {
      console.log(`${r.weight.padEnd(23)}${r.direction.padEnd(11)}${r.rows.padEnd(14)}${r.nf4Gflops.toFixed(1).padStart(11)}  ${r.denseGflops === null ? '-' : r.denseGflops.toFixed(1).padStart(13)}`);
    }
  }
  return out;
}

