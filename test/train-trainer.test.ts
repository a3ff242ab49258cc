/**
 * The trainer: warmup + cosine values, exact resume (20 steps == 10 + resume + 10, bit for bit),
 * gradient accumulation (2 x batch 1 == 1 x batch 2), clipping, the NaN guard, metrics.jsonl,
 * keeping the last K checkpoints and choosing what trains.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { packDocuments } from '../src/data/packing.js';
import type { AuxLoss } from '../src/losses/aux-loss.js';
import { createSchedule } from '../src/losses/schedule.js';
import { createModel } from '../src/models/create.js';
import { gradOf, Tensor } from '../src/tensor/index.js';
import { listCheckpoints, readTrainCheckpoint } from '../src/train/checkpoint.js';
import { packedBatchSource } from '../src/train/data-source.js';
import { createLrSchedule } from '../src/train/lr-schedule.js';
import { readMetrics } from '../src/train/metrics.js';
import { createProgress } from '../src/train/progress.js';
import { Trainer } from '../src/train/trainer.js';
import { makeTinyTrainer, snapshot } from './helpers/train-setup.js';
import { tinyMixtralConfig } from './helpers/tiny-model.js';
import { makeTmpDir } from './helpers/tmpdir.js';

describe('learning-rate schedule', () => {
  it('warms up linearly to the peak, then decays by cosine to 10% of it', () => {
    const s = createLrSchedule({ peakLr: 3e-4, totalSteps: 100 });
    expect(s.warmupSteps).toBe(10);
    expect(s.at(0)).toBeCloseTo(3e-5, 15);
    expect(s.at(4)).toBeCloseTo(1.5e-4, 15);
    expect(s.at(9)).toBeCloseTo(3e-4, 15);
    // halfway through the 90 decay steps: floor + (peak - floor) / 2
    expect(s.at(9 + 45)).toBeCloseTo(3e-5 + (3e-4 - 3e-5) / 2, 15);
    expect(s.at(10)).toBeCloseTo(3e-5 + 2.7e-4 * 0.5 * (1 + Math.cos(Math.PI / 90)), 15);
    expect(s.at(99)).toBeCloseTo(3e-5, 15);
    for (let i = 10; i < 99; i++) expect(s.at(i + 1)).toBeLessThan(s.at(i));
    const nw = createLrSchedule({ peakLr: 1, totalSteps: 5, warmupSteps: 0, minLrRatio: 0 });
    expect([0, 1, 2, 3, 4].map((i) => nw.at(i))).toEqual([0, 1, 2, 3, 4].map((i) => 0.5 * (1 + Math.cos((Math.PI * (i + 1)) / 5))));
    expect(() => createLrSchedule({ peakLr: 1, totalSteps: 5, warmupSteps: 6 })).toThrow(/warmup steps must be an integer in \[0, 5\], got 6/);
  });
});

describe('resume continues exactly', () => {
  for (const lora of [false, true]) {
    it(`${lora ? 'LoRA (dropout, trainable-only checkpoints)' : 'full model'}: 20 steps == 10 steps + resume + 10 steps`, async () => {
      const one = makeTinyTrainer({ runDir: makeTmpDir('resume-a'), steps: 20, lora });
      await one.trainer.run();
      const a = readMetrics(path.join(one.trainer.runDir, 'metrics.jsonl'));

      const runDir = makeTmpDir('resume-b');
      const first = makeTinyTrainer({ runDir, steps: 20, lora, hooks: { afterStep: (m, t) => { if (m.step === 10) t.requestStop(); } } });
      const r1 = await first.trainer.run();
      expect(r1).toMatchObject({ step: 10, stopped: true });
      expect(path.basename(r1.lastCheckpoint!)).toBe('step-000010');
      const ck = readTrainCheckpoint(r1.lastCheckpoint!);
      expect(ck.state.content).toBe(lora ? 'trainable' : 'full');

      const second = makeTinyTrainer({ runDir, steps: 20, lora });
      expect(second.trainer.resume()).toBe(10);
      await second.trainer.run();
      const b = readMetrics(path.join(runDir, 'metrics.jsonl'));
      expect(b.map((m) => m.step)).toEqual(a.map((m) => m.step));
      for (let i = 0; i < 20; i++) {
        expect(Math.abs(b[i]!.loss - a[i]!.loss)).toBeLessThan(1e-6);
        expect(b[i]!.lr).toBe(a[i]!.lr);
      }
      expect(b[19]!.eval_loss).toBe(a[19]!.eval_loss);
      // same final weights, bit for bit
      expect(snapshot(second.model)).toEqual(snapshot(one.model));
      expect(a[19]!.loss).toBeLessThan(a[0]!.loss);
    });
  }
});

describe('gradient accumulation', () => {
  it('2 micro-batches of 1 give the gradient of 1 batch of 2 (token-weighted, with masked labels)', async () => {
    // two sequences with different numbers of targets: the second has its first half masked
    const mk = (n: number, off: number): Int32Array => Int32Array.from({ length: n }, (_, i) => 3 + ((i * 7 + off) % 90));
    const docs = [
      { ids: mk(17, 0), mask: new Uint8Array(17).fill(1) },
      { ids: mk(16, 5), mask: Uint8Array.from({ length: 16 }, (_, i) => (i < 8 ? 0 : 1)) },
    ];
    const packed = packDocuments(docs, { seqLen: 16, eosId: 2, addEos: false });
    expect(packed.count).toBe(2);
    const grads = async (batchSize: number, accum: number): Promise<Map<string, Float32Array>> => {
      const model = createModel(tinyMixtralConfig(), { seed: 3, std: 0.05 });
      const t = new Trainer({
        model, runDir: makeTmpDir('accum'),
        train: packedBatchSource(packed, { batchSize, shuffle: false }),
        config: { steps: 1, lr: 0, gradAccumSteps: accum, clipGradNorm: null },
      });
      t.trainStep();
      return new Map([...t.params].map(([n, p]) => [n, Float32Array.from(gradOf(p)!.f)]));
    };
    const big = await grads(2, 1);
    const acc = await grads(1, 2);
    let worst = 0;
    for (const [n, g] of big) {
      const h = acc.get(n)!;
      let scale = 0;
      for (const v of g) scale = Math.max(scale, Math.abs(v));
      for (let i = 0; i < g.length; i++) worst = Math.max(worst, Math.abs(g[i]! - h[i]!) / Math.max(scale, 1e-8));
    }
    expect(worst).toBeLessThan(1e-5);
  });
});

describe('clipping, NaN guard, metrics, checkpoints kept, trainable selection', () => {
  it('clips the global gradient norm: the update sees grad * maxNorm / (norm + 1e-6)', () => {
    const { trainer } = makeTinyTrainer({ runDir: makeTmpDir('clip'), steps: 3, config: { clipGradNorm: 1e-3, beta1: 0.9 } });
    const m = trainer.trainStep();
    let sq = 0;
    for (const p of trainer.params.values()) for (const v of gradOf(p)!.f) sq += v * v;
    expect(m.grad_norm).toBeCloseTo(Math.sqrt(sq), 6);
    expect(m.grad_norm).toBeGreaterThan(1e-3);
    expect(m.clip_scale).toBeCloseTo(1e-3 / (m.grad_norm + 1e-6), 12);
    // AdamW's first moment after one step: (1 - beta1) * scaled gradient
    const st = trainer.optimizer.state();
    const [name, p] = [...trainer.params][0]!;
    const g = gradOf(p)!.f;
    for (let i = 0; i < 5; i++) expect(st.m[name]![i]).toBeCloseTo(0.1 * g[i]! * m.clip_scale, 9);
    const unclipped = makeTinyTrainer({ runDir: makeTmpDir('noclip'), steps: 3, config: { clipGradNorm: 1e6 } });
    expect(unclipped.trainer.trainStep().clip_scale).toBe(1);
  });

  it('stops on a NaN loss naming the step and the loss; the last good checkpoint stays, weights untouched', async () => {
    let calls = 0;
    const nanAt3: AuxLoss = { name: 'probe', compute: () => (++calls === 3 ? Tensor.from([NaN], []) : null) };
    const runDir = makeTmpDir('nan');
    const { trainer, model } = makeTinyTrainer({ runDir, steps: 6, checkpointEvery: 1, keep: 5 });
    (trainer as unknown as { aux: unknown[] }).aux = [...(trainer as unknown as { aux: unknown[] }).aux, { loss: nanAt3, weight: createSchedule(1) }];
    await expect(trainer.run()).rejects.toThrow(/^training diverged at step 3: loss is NaN \(lm_loss [0-9.]+, balance [0-9.e-]+, probe NaN, micro-batch 1 of 1\); stopped before updating the weights; the last good checkpoint is .*step-000002$/);
    expect(listCheckpoints(runDir).map((c) => c.step)).toEqual([1, 2]);
    const ck = readTrainCheckpoint(listCheckpoints(runDir)[1]!.dir);
    for (const [n, t] of model.namedParameters()) expect(Array.from(ck.params.get(n)!)).toEqual(Array.from(t.f));
    expect(readMetrics(path.join(runDir, 'metrics.jsonl')).map((m) => m.step)).toEqual([1, 2]);
  });

  it('writes every metrics.jsonl field; keeps the last K checkpoints', async () => {
    const runDir = makeTmpDir('metrics');
    const { trainer } = makeTinyTrainer({ runDir, steps: 6, checkpointEvery: 1, keep: 2, batchSize: 2 });
    const res = await trainer.run();
    expect(res).toMatchObject({ step: 6, stopped: false });
    expect(listCheckpoints(runDir).map((c) => c.step)).toEqual([5, 6]);
    expect(fs.readdirSync(path.join(runDir, 'checkpoints')).sort()).toEqual(['step-000005', 'step-000006']);
    const ms = readMetrics(path.join(runDir, 'metrics.jsonl'));
    expect(ms.map((m) => m.step)).toEqual([1, 2, 3, 4, 5, 6]);
    const sched = createLrSchedule({ peakLr: 3e-3, totalSteps: 6, warmupSteps: 2 });
    for (const m of ms) {
      for (const k of ['step', 'loss', 'lm_loss', 'balance', 'balance_weight', 'load', 'lr', 'tokens_per_s', 'grad_norm', 'clip_scale', 'tokens', 'targets', 'elapsed_s', 'epoch']) {
        expect(typeof m[k], k).toBe('number');
      }
      expect(m.lr).toBeCloseTo(sched.at(m.step - 1), 15);
      expect(m.loss).toBeCloseTo(m.lm_loss + 0.05 * (m['balance'] as number), 5);
      expect(m.load_per_layer).toHaveLength(2);
      expect(m.load).toBeCloseTo(2, 10); // top-2 routing: two true experts per token
      expect(m.tokens_per_expert).toHaveLength(2);
      for (const row of m.tokens_per_expert) expect(row.reduce((a, b) => a + b, 0)).toBe(2 * 16 * 2);
      expect(m.tokens).toBe(32);
    }
    expect(ms[4]!.eval_loss).toBeGreaterThan(0);
    expect(ms[4]!.eval_ppl).toBeCloseTo(Math.exp(ms[4]!.eval_loss!), 6);
    expect(ms[5]!.eval_loss).toBeGreaterThan(0);
    expect(ms[0]!.eval_loss).toBeUndefined();
    expect(ms[5]!.balance_weight).toBe(0.05); // 20 batches per epoch: still epoch 1
  });

  it('trains only what is selected: routers only, everything else frozen and unchanged', async () => {
    const runDir = makeTmpDir('routers');
    const { trainer, model } = makeTinyTrainer({ runDir, steps: 3, config: { trainable: ['routers'] } });
    const before = snapshot(model);
    expect([...trainer.params.keys()]).toEqual(['model.layers.0.block_sparse_moe.gate.weight', 'model.layers.1.block_sparse_moe.gate.weight']);
    await trainer.run();
    const after = snapshot(model);
    for (const [n, v] of before) {
      if (trainer.params.has(n)) expect(after.get(n)).not.toEqual(v);
      else expect(after.get(n)).toEqual(v);
    }
    for (const [n, t] of model.namedParameters()) expect(t.requiresGrad).toBe(trainer.params.has(n));
    const ck = readTrainCheckpoint(path.join(runDir, 'checkpoints', 'step-000003'));
    expect(ck.state.content).toBe('trainable');
    expect([...ck.params.keys()]).toEqual([...trainer.params.keys()]);
    expect(() => makeTinyTrainer({ runDir, steps: 1, config: { trainable: ['nothing_matches_this'] } })).toThrow(/trainable: \[nothing_matches_this\] matches no parameter/);
  });
});

describe('progress output', () => {
  it('plain lines every N steps (not a TTY) with step, loss, aux losses, load, lr, tokens/s and ETA', async () => {
    const lines: string[] = [];
    const stream = { write: (s: string) => { lines.push(...s.split('\n').filter((l) => l !== '')); return true; } } as unknown as NodeJS.WritableStream;
    const { trainer } = makeTinyTrainer({ runDir: makeTmpDir('progress'), steps: 5, config: { evalEvery: 0 } });
    (trainer as unknown as { progress: unknown }).progress = createProgress({ stream, tty: false, every: 2 });
    await trainer.run();
    const steps = lines.filter((l) => l.startsWith('step '));
    expect(steps.map((l) => l.split(' | ')[0])).toEqual(['step 1/5', 'step 2/5', 'step 4/5', 'step 5/5']);
    expect(steps[1]).toMatch(/^step 2\/5 \| loss \d+\.\d{4} \| lm \d+\.\d{4} \| balance \d+\.\d{4} \| load 2\.00 \| lr 3\.00e-3 \| \d+ tok\/s \| eta \d+s$/);
    expect(lines.some((l) => /^eval at step 5: loss \d+\.\d{4}, ppl \d+\.\d{2}, load 2\.00$/.test(l))).toBe(true);
  });
});
