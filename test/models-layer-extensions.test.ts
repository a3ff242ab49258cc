/**
 * Layer extensions are an open registry: a moe_tune key registered by any module is built on load
 * (its tensors read from the checkpoint by name, so save -> load round-trips them), an unknown key is
 * one error line naming it, and the model builder's own keys cannot be taken.
 */
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { editModelConfig, moeTuneOf } from '../src/models/config-edit.js';
import { createModel } from '../src/models/create.js';
import { registerLayerExtension } from '../src/models/layer-extensions.js';
import { loadModel } from '../src/models/load.js';
import { Module } from '../src/models/module.js';
import { saveModel } from '../src/models/save.js';
import { Tensor } from '../src/tensor/index.js';
import { makeTmpDir } from './helpers/tmpdir.js';
import { tinyLlamaConfig } from './helpers/tiny-model.js';

/** A test extension: one extra [D] tensor per decoder layer, `model.layers.i.probe.weight`. */
class Probe extends Module {
  constructor(readonly weight: Tensor) {
    super();
    this.registerParam('weight', weight);
  }
}

registerLayerExtension({
  key: 'probe',
  build(model, config, src) {
    model.model.layers.items.forEach((layer, i) => {
      layer.registerModule('probe', new Probe(src.get(`model.layers.${i}.probe.weight`, [config.hiddenSize], { type: 'norm' })));
    });
  },
});

describe('layer extensions (open registry)', () => {
  it('a registered key is built on load from the checkpoint, with its tensors checked by name', async () => {
    const model = createModel(tinyLlamaConfig(), { seed: 1 });
    const D = model.config.hiddenSize;
    model.model.layers.items.forEach((layer, i) => layer.registerModule('probe', new Probe(Tensor.param(new Float32Array(D).fill(i + 0.5), [D], `p${i}`))));
    editModelConfig(model, (json) => {
      moeTuneOf(json)['probe'] = { note: 'test' };
    }, 'probe');
    const dir = path.join(makeTmpDir('layer-ext'), 'm');
    await saveModel(model, dir);
    const back = loadModel(dir).model;
    const p = back.parameters();
    expect(Array.from(p.get('model.layers.1.probe.weight')!.f.subarray(0, 3))).toEqual([1.5, 1.5, 1.5]);
    expect(back.config.extensions['probe']).toEqual({ note: 'test' });
  });

  it('an unregistered key is one line naming it; builder keys cannot be registered', () => {
    const cfg = { ...tinyLlamaConfig(), moe_tune: { sparkle: { x: 1 } } };
    expect(() => createModel(cfg, { seed: 1 })).toThrow(/^LlamaForCausalLM: config key moe_tune\.sparkle needs a layer extension that is not registered \(registered: .*probe.*\)/);
    expect(() => registerLayerExtension({ key: 'null_experts', build: () => undefined })).toThrow('registerLayerExtension: moe_tune.null_experts is read by the model builder, not an extension key');
  });
});
