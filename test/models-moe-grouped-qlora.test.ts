/**
 * QLoRA MoE experts through grouped kernels (models/grouped-linears.ts runners): 4-bit experts
 * (nf4GroupedLinear: every expert's NF4 product of a projection in one native call) and
 * LoRA-wrapped experts (bases grouped, A and B products grouped) equal the one-expert-at-a-time
 * path: outputs and gradients of the input, the LoRA A / B weights and the router. The native
 * grouped NF4 kernel equals one nf4Gemm per product bit for bit; the op's input gradient is checked
 * against central finite differences in float64 (js backend).
 */
import { describe, expect, it } from 'vitest';
import { applyLora } from '../src/lora/index.js';
import { groupedLinearRunner } from '../src/models/grouped-linears.js';
import { nf4Gemm, nf4GemmGrouped, quantizeModel, quantizeNf4, type Nf4Weight } from '../src/quant/index.js';
import { nf4GroupedLinear } from '../src/quant/nf4-grouped-linear-op.js';
import { nativeAvailable, Rng, setBackend } from '../src/tensor/index.js';
import { gradcheck, rand64 } from './helpers/gradcheck.js';
import { blockOutputAndGrads } from './helpers/block-grads.js';
import { tinyMixtralConfig, tinyModel } from './helpers/tiny-model.js';

function gaussian(n: number, rng: Rng, std = 1): Float32Array {
  return Float32Array.from({ length: n }, () => rng.normal() * std);
}

function relDiff(p: ArrayLike<number>, q: ArrayLike<number>): number {
  let d = 0;
  let s = 1e-12;
  for (let i = 0; i < p.length; i++) {
    d = Math.max(d, Math.abs(p[i]! - q[i]!));
    s = Math.max(s, Math.abs(q[i]!));
  }
  return d / s;
}

describe.skipIf(!nativeAvailable())('native nf4GemmGrouped == one nf4Gemm per product, bit for bit', () => {
  for (const doubleQuant of [true, false]) {
    for (const transW of [true, false]) {
      it(`transW ${transW}, doubleQuant ${doubleQuant}, 6 experts with 0..40 rows, beta 0 and 1`, () => {
        setBackend('native');
        const rng = new Rng(doubleQuant ? 3 : 4);
        const [N, K] = [48, 128];
        const Ms = Int32Array.from([7, 0, 40, 1, 16, 23]);
        const Ws: Nf4Weight[] = Array.from(Ms, () => quantizeNf4(gaussian(N * K, rng, 0.05), [N, K], { doubleQuant }));
        const As = Array.from(Ms, (m) => gaussian(m * (transW ? K : N), rng));
        for (const beta of [0, 1]) {
          const init = Array.from(Ms, (m) => gaussian(m * (transW ? N : K), rng));
          const Cs = init.map((c) => Float32Array.from(c));
          nf4GemmGrouped(transW, Ms, N, K, As, Ws, beta, Cs);
          for (let i = 0; i < Ms.length; i++) {
            const ref = Float32Array.from(init[i]!);
            nf4Gemm(transW, Ms[i]!, N, K, As[i]!, Ws[i]!, beta, ref);
            expect(Buffer.from(Cs[i]!.buffer).equals(Buffer.from(ref.buffer)), `product ${i}`).toBe(true);
          }
        }
      });
    }
  }
});

type Variant = 'nf4' | 'nf4+lora' | 'float+lora';

/** A 4-expert MoE layer as the QLoRA recipe leaves it; LoRA B random so the adapters matter. */
function layer(variant: Variant) {
  const model = tinyModel(tinyMixtralConfig({ num_local_experts: 4, hidden_size: 64, intermediate_size: 64 }), 4, 0.2);
  if (variant !== 'float+lora') quantizeModel(model, { targets: ['w1', 'w2', 'w3'] });
  if (variant !== 'nf4') {
    applyLora(model, { targets: ['w1', 'w2', 'w3'], r: 4, alpha: 8, seed: 2 });
    const rng = new Rng(9);
    for (const [n, p] of model.namedParameters()) if (n.includes('lora_B')) p.f.set(gaussian(p.size, rng, 0.1));
  }
  for (const [n, p] of model.namedParameters()) p.requiresGrad = n.includes('lora_') || n.includes('.gate.');
  return model.moeBlocks()[0]!;
}

function run(variant: Variant, grouped: boolean): { y: number[]; grads: Map<string, number[]>; runner: string | null } {
  const block = layer(variant);
  block.grouped = grouped;
  const runner = groupedLinearRunner(block.experts.items.map((e) => e.proj('gate')))?.name ?? null;
  return { ...blockOutputAndGrads(block, 40, 64, [...block.namedParameters()].filter(([, p]) => p.requiresGrad)), runner };
}

describe('QLoRA MoE layer: grouped experts == one expert at a time', () => {
  for (const variant of ['nf4', 'nf4+lora', 'float+lora'] as const) {
    it(`${variant} experts: outputs and the gradients of the input, LoRA A / B and the router`, () => {
      const a = run(variant, true);
      const b = run(variant, false);
      expect(a.runner).toBe(variant === 'nf4' ? 'nf4' : 'lora');
      expect(relDiff(a.y, b.y)).toBeLessThan(1e-5);
      expect([...a.grads.keys()]).toEqual([...b.grads.keys()]);
      expect(a.grads.size).toBeGreaterThan(variant === 'nf4' ? 1 : 20);
      for (const [n, g] of a.grads) {
        expect(g.length, n).toBe(b.grads.get(n)!.length);
        expect(g.some((v) => v !== 0), n).toBe(true);
        expect(relDiff(g, b.grads.get(n)!), n).toBeLessThan(1e-4);
      }
    });
  }
});

describe('nf4GroupedLinear: input gradient against finite differences (float64, js)', () => {
  it('3 experts, one empty', () => {
    setBackend('js');
    try {
      const rng = new Rng(5);
      const [N, K] = [6, 16];
      const ws = [0, 1, 2].map(() => quantizeNf4(gaussian(N * K, rng, 0.3), [N, K]));
      const offsets = Int32Array.from([0, 3, 3, 7]);
      const x = rand64([7, K], rng);
      const r = gradcheck((xx) => nf4GroupedLinear(xx, ws, offsets), [x]);
      expect(r.maxRelError).toBeLessThan(1e-6);
    } finally {
      setBackend('auto');
    }
  });
});
