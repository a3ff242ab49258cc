/**
 * The aux-loss registry (names, keys, one-line errors) and the weight schedules (constant, per
 * epoch, linear, cosine) at given steps.
 */
import { describe, expect, it } from 'vitest';
import { AUX_LOSSES, createAuxLoss, createWeightedAuxLoss } from '../src/losses/registry.js';
import { createSchedule, type ScheduleSpec } from '../src/losses/schedule.js';

describe('aux-loss registry', () => {
  it('has the seven losses', () => {
    expect(AUX_LOSSES.map((l) => l.name)).toEqual(['balance', 'adamoe-balance', 'tcmoe-balance', 'tcmoe-reward', 'entropy', 'topp-balance', 'z-loss']);
    for (const l of AUX_LOSSES) expect(createAuxLoss({ name: l.name }).name).toBe(l.name);
    expect((createAuxLoss({ name: 'balance', form: 'top1' }) as unknown as { form: string }).form).toBe('top1');
  });

  it('unknown names, keys and values are one-line errors', () => {
    expect(() => createAuxLoss({ name: 'balanse' })).toThrow(
      "unknown aux loss 'balanse' (valid: balance(form), adamoe-balance(form, nullGroup), tcmoe-balance(sequenceLength), tcmoe-reward, entropy, topp-balance(sequenceLength), z-loss)",
    );
    expect(() => createAuxLoss({ name: 'balance', from: 'top1' })).toThrow("aux loss 'balance': unknown key 'from' (valid keys: form: mixtral-all | per-layer | top1)");
    expect(() => createAuxLoss({ name: 'balance', form: 'top2' })).toThrow("aux loss 'balance': form must be one of mixtral-all, per-layer, top1, got 'top2'");
    expect(() => createAuxLoss({ name: 'entropy', sequenceLength: 4 })).toThrow("aux loss 'entropy': unknown key 'sequenceLength' (valid keys: none)");
    expect(() => createAuxLoss({ name: 'topp-balance', sequenceLength: 0 })).toThrow("aux loss 'topp-balance': sequenceLength must be a positive integer, got 0");
  });

  it('a weighted loss pairs the loss with its schedule', () => {
    const w = createWeightedAuxLoss({ name: 'adamoe-balance', weight: { type: 'per-epoch', values: [0.1, 0.01] } });
    expect(w.loss.name).toBe('adamoe-balance');
    expect(w.weight.at({ step: 15, totalSteps: 20, stepsPerEpoch: 10 })).toBe(0.01);
    expect(createWeightedAuxLoss({ name: 'z-loss' }).weight.at({ step: 3, totalSteps: 10, stepsPerEpoch: 5 })).toBe(1);
  });
});

describe('schedules', () => {
  const at = (spec: ScheduleSpec | number, step: number, totalSteps = 11, stepsPerEpoch = 4): number => createSchedule(spec).at({ step, totalSteps, stepsPerEpoch });

  it('constant', () => {
    expect(at(0.02, 0)).toBe(0.02);
    expect(at({ type: 'constant', value: 0.5 }, 7)).toBe(0.5);
  });

  it('per-epoch ("tight to loose", AdaMoE §3.4): values[epoch], the last one continues', () => {
    const s: ScheduleSpec = { type: 'per-epoch', values: [1e-2, 1e-3] };
    expect(at(s, 0)).toBe(1e-2);
    expect(at(s, 3)).toBe(1e-2);
    expect(at(s, 4)).toBe(1e-3);
    expect(at(s, 10)).toBe(1e-3);
    expect(() => createSchedule({ type: 'per-epoch', values: [] })).toThrow('schedule per-epoch: values must not be empty');
  });

  it('linear from -> to over steps 0 .. totalSteps - 1', () => {
    const s: ScheduleSpec = { type: 'linear', from: 1, to: 0 };
    expect(at(s, 0)).toBe(1);
    expect(at(s, 5)).toBeCloseTo(0.5, 15);
    expect(at(s, 10)).toBe(0);
    expect(at(s, 20)).toBe(0);
  });

  it('cosine from -> to', () => {
    const s: ScheduleSpec = { type: 'cosine', from: 1, to: 0.1 };
    expect(at(s, 0)).toBeCloseTo(1, 15);
    expect(at(s, 5)).toBeCloseTo(0.55, 15); // half way: the mean
    expect(at(s, 10)).toBeCloseTo(0.1, 15);
    expect(at(s, 2.5)).toBeCloseTo(0.1 + 0.9 * 0.5 * (1 + Math.cos(Math.PI / 4)), 15);
  });

  it('unknown types are an error', () => {
    expect(() => createSchedule({ type: 'step' } as unknown as ScheduleSpec)).toThrow("schedule: unknown type 'step' (valid: constant, per-epoch, linear, cosine)");
  });
});
