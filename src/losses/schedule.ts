/**
 * Weight schedules for auxiliary losses ("tight to loose" annealing, AdaMoE 004 §3.4): constant,
 * step per epoch (the paper's), linear and cosine between two values (our extensions).
 */
export interface ScheduleContext {
  step: number;
  totalSteps: number;
  stepsPerEpoch: number;
}

export interface Schedule {
  readonly spec: ScheduleSpec;
  at(ctx: ScheduleContext): number;
}

export type ScheduleSpec =
  | { type: 'constant'; value: number }
  /** values[e] during epoch e (the last value continues). */
  | { type: 'per-epoch'; values: number[] }
  | { type: 'linear'; from: number; to: number }
  | { type: 'cosine'; from: number; to: number };

export function createSchedule(spec: ScheduleSpec | number): Schedule {
  const s: ScheduleSpec = typeof spec === 'number' ? { type: 'constant', value: spec } : spec;
  const progress = (c: ScheduleContext): number => (c.totalSteps <= 1 ? 1 : Math.min(1, Math.max(0, c.step / (c.totalSteps - 1))));
  switch (s.type) {
    case 'constant':
      return { spec: s, at: () => s.value };
    case 'per-epoch':
      if (s.values.length === 0) throw new Error('schedule per-epoch: values must not be empty');
      return {
        spec: s,
        at: (c) => s.values[Math.min(s.values.length - 1, Math.floor(c.step / Math.max(1, c.stepsPerEpoch)))]!,
      };
    case 'linear':
      return { spec: s, at: (c) => s.from + (s.to - s.from) * progress(c) };
    case 'cosine':
      return { spec: s, at: (c) => s.to + (s.from - s.to) * 0.5 * (1 + Math.cos(Math.PI * progress(c))) };
    default:
      throw new Error(`schedule: unknown type '${String((s as { type?: unknown }).type)}' (valid: constant, per-epoch, linear, cosine)`);
  }
}
