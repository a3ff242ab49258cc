/**
 * The adapter passes: `lora` (plain LoRA on target linears) and `mo-lora` (AdaMoE's Mo-LoRA on a
 * dense model: per target linear a random router and n LoRA experts, optionally null experts).
 * Both keep the function at step 0 (B = 0) and freeze everything but the adapters.
 */
import { layoutOf } from '../models/architectures/index.js';
import type { CausalLM } from '../models/causal-lm.js';
import {
  applyLora, applyMoLora, checkLoraHyper, checkMoLoraCounts, isAdapterWrapper, moLoraSettings, noMatchError,
  selectLinears, targetsText, type LoraOptions, type MoLoraOptions, type TargetPatterns,
} from '../lora/index.js';
import type { SurgeryPass } from './surgery-pass.js';

function checkTargets(model: CausalLM, targets: TargetPatterns, rest: Omit<LoraOptions, 'r' | 'alpha' | 'targets'>, where: string): string | null {
  try {
    const sel = selectLinears(model, { targets, exclude: rest.exclude ?? null, layers: rest.layers ?? null }, where);
    if (sel.length === 0) return noMatchError(model, { targets }, where).message.replace(`${where}: `, '');
    for (const [path, m] of sel) if (isAdapterWrapper(m)) return `${path} already has an adapter (one adapter per linear)`;
  } catch (err) {
    return (err as Error).message.replace(`${where}: `, '');
  }
  return null;
}

/** LoRA options whose targets may be left to the family's layout (its PEFT default target_modules). */
export type LoraPassOptions = Omit<LoraOptions, 'targets'> & { targets: TargetPatterns | null };

export function loraPass(passOpts: LoraPassOptions, spec?: string): SurgeryPass {
  const resolve = (model: CausalLM): LoraOptions => ({ ...passOpts, targets: passOpts.targets ?? [...layoutOf(model.config).loraTargets] });
  return {
    name: 'lora',
    spec,
    configKeys: ['moe_tune.lora'],
    check(model) {
      const opts = resolve(model);
      try {
        checkLoraHyper(opts, 'lora');
      } catch (err) {
        return (err as Error).message.replace('lora: ', '');
      }
      if (model.config.extensions.lora) return 'the model already has LoRA adapters (apply one lora pass with all targets)';
      return checkTargets(model, opts.targets, opts, 'lora');
    },
    apply(model, ctx) {
      const opts = resolve(model);
      const res = applyLora(model, { ...opts, rng: ctx.rng });
      const scaling = opts.rslora ? opts.alpha / Math.sqrt(opts.r) : opts.alpha / opts.r;
      ctx.note(`LoRA r=${opts.r}, alpha=${opts.alpha} (scale ${scaling}), dropout ${opts.dropout ?? 0} on ${res.modules.length} linears (${targetsText(opts.targets)}); B = 0: the function is preserved at step 0; everything else frozen`);
    },
  };
}

export function moLoraPass(opts: MoLoraOptions, spec?: string): SurgeryPass {
  const s = moLoraSettings(opts);
  return {
    name: 'mo-lora',
    spec,
    configKeys: ['moe_tune.mo_lora'],
    check(model) {
      try {
        checkLoraHyper(s, 'mo-lora');
        checkMoLoraCounts(s, 'mo-lora');
      } catch (err) {
        return (err as Error).message.replace('mo-lora: ', '');
      }
      if (model.config.extensions.mo_lora) return 'the model already has Mo-LoRA layers';
      return checkTargets(model, s.targets, {}, 'mo-lora');
    },
    apply(model, ctx) {
      const res = applyMoLora(model, { ...opts, rng: ctx.rng });
      ctx.note(`Mo-LoRA on ${res.modules.length} linears (${targetsText(s.targets)}): ${s.experts} LoRA experts r=${s.r}, alpha=${s.alpha}, top-${s.topK}${s.nullExperts ? ` over ${s.experts} + ${s.nullExperts} null experts` : ''}; random routers, B = 0: the function is preserved at step 0`);
    },
  };
}
