/**
 * Registers the LoRA and Mo-LoRA layers with the model builder, so a config.json carrying
 * `moe_tune.lora` / `moe_tune.mo_lora` loads with its adapters (tensors checked by name and
 * shape like every other key). Imported by src/lora/index.ts.
 */
import { registerLayerExtension } from '../models/layer-extensions.js';
import { wrapLora } from './apply-lora.js';
import { moLoraSettings, wrapMoLora } from './apply-mo-lora.js';
import { freezeAllButAdapters } from './freeze.js';
import type { TargetPatterns } from './target-match.js';

registerLayerExtension({
  key: 'mo_lora',
  order: 10,
  build(model, config, src) {
    const c = config.extensions.mo_lora!;
    wrapMoLora(model, moLoraSettings({
      targets: c.targets as TargetPatterns, experts: c.experts, r: c.r, alpha: c.alpha, dropout: c.dropout,
      topK: c.top_k, nullExperts: c.null_experts,
    }), { src }, 'moe_tune.mo_lora');
    freezeAllButAdapters(model);
  },
});

registerLayerExtension({
  key: 'lora',
  order: 20,
  build(model, config, src) {
    const c = config.extensions.lora!;
    wrapLora(model, {
      targets: c.targets as TargetPatterns, exclude: (c.exclude ?? null) as TargetPatterns | null, layers: c.layers ?? null,
      r: c.r, alpha: c.alpha, dropout: c.dropout, rslora: c.rslora,
    }, { src }, 'moe_tune.lora');
    freezeAllButAdapters(model);
  },
});
