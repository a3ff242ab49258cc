/**
 * The schema of a checkpoint's trainer-state.json (see checkpoint.ts), so a damaged or hand-edited state is one
 * line naming the file and the field ("step: expected a non-negative integer, got \"abc\"") instead of a TypeError
 * deep inside resume, or a silently accepted negative step.
 */
import { z } from 'zod';
import { FileFormatError } from '../io/index.js';

const count = z.number().int().nonnegative();
const u32 = z.number().int().min(0).max(0xffffffff);

export const RngStateSchema = z.object({
  s: z.tuple([u32, u32, u32, u32]),
  spare: z.number().nullable(),
});

export const TrainerStateSchema = z.object({
  format: z.literal('moe-tune-trainer-state'),
  version: z.literal(1),
  step: count,
  content: z.enum(['full', 'trainable']),
  params: z.array(z.string()),
  trainable: z.array(z.string()),
  optimizer: z.object({ step: count, steps: z.record(z.string(), count) }),
  /** The batch source's position: its own shape, checked by the source when restored. */
  data: z.record(z.string(), z.unknown()),
  rng: z.record(z.string(), RngStateSchema),
  routers: z.array(z.unknown()).optional(),
  lr: z.number().finite(),
  tokensSeen: count,
  elapsedS: z.number().finite().nonnegative().optional(),
  tokensProcessed: count.optional(),
  config: z.unknown(),
  extra: z.unknown(),
}).loose();

export type TrainerStateParsed = z.infer<typeof TrainerStateSchema>;

function shown(v: unknown): string {
  if (v === undefined) return 'nothing (the field is missing)';
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 40 ? `${s.slice(0, 37)}...` : s;
}

function valueAt(root: unknown, p: readonly PropertyKey[]): unknown {
  let v = root;
  for (const k of p) {
    if (typeof v !== 'object' || v === null) return undefined;
    v = (v as Record<PropertyKey, unknown>)[k];
  }
  return v;
}

/** Parses a trainer state; throws a FileFormatError naming `file` and the first bad field. */
export function parseTrainerState(raw: unknown, file: string): TrainerStateParsed {
  const r = TrainerStateSchema.safeParse(raw);
  if (r.success) {
    if (r.data.optimizer.step > r.data.step) {
      throw new FileFormatError(file, `field 'optimizer.step': ${r.data.optimizer.step} is more than field 'step' ${r.data.step}`);
    }
    for (const n of r.data.trainable) {
      if (!r.data.params.includes(n) && r.data.content === 'trainable') {
        throw new FileFormatError(file, `field 'trainable': '${n}' is not listed in field 'params' (the tensors of params.safetensors)`);
      }
    }
    return r.data;
  }
  const issue = r.error.issues[0]!;
  const field = issue.path.map(String).join('.') || '(root)';
  return (() => {
    throw new FileFormatError(file, `field '${field}': ${issue.message}; got ${shown(valueAt(raw, issue.path))}`);
  })();
}
