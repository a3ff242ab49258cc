/**
 * Per-kernel timers: wraps a backend so every kernel call adds its wall time and call count to a
 * table. Enabled with MOE_TUNE_PROFILE=1 (2: GEMMs split by shape); without it nothing is wrapped and
 * there is no overhead. The bench prints the table to show where a step's time goes (the time not
 * in any kernel is the TypeScript side: routing index work, tape, allocation).
 */
import type { Backend } from '../backend.js';

export interface KernelTiming {
  kernel: string;
  calls: number;
  ms: number;
}

const table = new Map<string, { calls: number; ms: number }>();

export function profiledBackend(b: Backend): Backend {
  // MOE_TUNE_PROFILE=2 splits gemm by its M x N x K shape
  const detailed = process.env['MOE_TUNE_PROFILE'] === '2';
  const wrapped: Record<string, unknown> = { name: b.name, threads: b.threads };
  for (const key of Object.keys(b) as (keyof Backend)[]) {
    const fn = b[key];
    if (typeof fn !== 'function') continue;
    wrapped[key] = (...args: unknown[]): unknown => {
      const t0 = performance.now();
      const r = (fn as (...a: unknown[]) => unknown).apply(b, args);
      const dt = performance.now() - t0;
      // gemm timings are split by shape class so the table shows which matmuls dominate
      const label = key !== 'gemm' ? key
        : detailed ? `gemm ${args[0] ? 'T' : 'N'}${args[1] ? 'T' : 'N'} ${args[2]}x${args[3]}x${args[4]}`
          : `gemm ${args[0] ? 'T' : 'N'}${args[1] ? 'T' : 'N'}`;
      const e = table.get(label);
      if (e) {
        e.calls++;
        e.ms += dt;
      } else table.set(label, { calls: 1, ms: dt });
      return r;
    };
  }
  return wrapped as unknown as Backend;
}

export function profilingRequested(): boolean {
  const v = process.env['MOE_TUNE_PROFILE'];
  return v === '1' || v === '2';
}

export function kernelTimings(): KernelTiming[] {
  return [...table.entries()].map(([kernel, v]) => ({ kernel, ...v })).sort((a, b) => b.ms - a.ms);
}

export function resetKernelTimings(): void {
  table.clear();
}
