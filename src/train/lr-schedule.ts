/**
 * Learning-rate schedule: linear warmup to the peak, then cosine decay to a floor (10% of the peak
 * by default: paper 000 A.2 warms up to 3e-4 over the first 10% of steps and decays to 3e-5).
 *
 * For optimizer step s = 0 .. total-1 (the s-th update), with W warmup steps and D = total - W:
 *   s <  W:  lr = peak * (s + 1) / W                       (the first update is not wasted at 0)
 *   s >= W:  lr = floor + (peak - floor) * (1 + cos(pi * (s - W + 1) / D)) / 2
 * so the last warmup step runs at the peak and the last step at the floor exactly.
 */
export interface LrScheduleOptions {
  peakLr: number;
  totalSteps: number;
  /** Warmup steps (default: round(warmupRatio * totalSteps)). */
  warmupSteps?: number;
  /** Fraction of the steps used for warmup when warmupSteps is not given (default 0.1). */
  warmupRatio?: number;
  /** Floor as a fraction of the peak (default 0.1). */
  minLrRatio?: number;
}

export interface LrSchedule {
  readonly peakLr: number;
  readonly minLr: number;
  readonly warmupSteps: number;
  readonly totalSteps: number;
  at(step: number): number;
}

export function createLrSchedule(o: LrScheduleOptions): LrSchedule {
  const { peakLr, totalSteps } = o;
  if (!(Number.isFinite(peakLr) && peakLr >= 0)) throw new Error(`lr schedule: peak lr must be a non-negative number, got ${peakLr}`);
  if (!Number.isInteger(totalSteps) || totalSteps < 1) throw new Error(`lr schedule: total steps must be a positive integer, got ${totalSteps}`);
  const ratio = o.warmupRatio ?? 0.1;
  if (!(ratio >= 0 && ratio <= 1)) throw new Error(`lr schedule: warmup ratio must be in [0, 1], got ${ratio}`);
  const warmupSteps = o.warmupSteps ?? Math.round(ratio * totalSteps);
  if (!Number.isInteger(warmupSteps) || warmupSteps < 0 || warmupSteps > totalSteps) {
    throw new Error(`lr schedule: warmup steps must be an integer in [0, ${totalSteps}], got ${warmupSteps}`);
  }
  const minRatio = o.minLrRatio ?? 0.1;
  if (!(minRatio >= 0 && minRatio <= 1)) throw new Error(`lr schedule: min lr ratio must be in [0, 1], got ${minRatio}`);
  const minLr = peakLr * minRatio;
  const decay = totalSteps - warmupSteps;
  return {
    peakLr, minLr, warmupSteps, totalSteps,
    at(step: number): number {
      if (step < warmupSteps) return (peakLr * (step + 1)) / warmupSteps;
      if (decay <= 0) return peakLr;
      const progress = Math.min(1, (step - warmupSteps + 1) / decay);
      return minLr + (peakLr - minLr) * 0.5 * (1 + Math.cos(Math.PI * progress));
    },
  };
}
