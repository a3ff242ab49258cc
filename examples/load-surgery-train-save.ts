// load -> surgery -> train -> save with the moe-tune library (a few seconds on 2 cores, no download).
import {
  applyLora, applySurgery, createWeightedAuxLoss, finetune, loadBrownCorpus, loadModel,
  nullExpertsPass, packDocuments, perplexity, pretrain, saveModel, tokenizeTexts,
} from 'moe-tune';

export async function main(out = 'runs/example') {
  // 0. A base checkpoint to adapt: a tiny Mixtral pretrained for a few seconds on the embedded Brown
  //    corpus stands in for a downloaded Hugging Face checkpoint (loadModel reads either).
  const base = await pretrain({
    runDir: `${out}/base`, corpus: { kind: 'brown', maxTrainDocs: 60 }, tokenizer: { vocabSize: 512 },
    model: {
      architectures: ['MixtralForCausalLM'], hidden_size: 64, intermediate_size: 128, num_hidden_layers: 2,
      num_attention_heads: 4, num_key_value_heads: 2, num_local_experts: 4, num_experts_per_tok: 2,
      rms_norm_eps: 1e-5, max_position_embeddings: 256, tie_word_embeddings: false,
    },
    seqLen: 64, batchSize: 8, trainer: { steps: 150, lr: 3e-3 }, evalMaxBatches: 2,
  });

  // 1. load: the model and the directory's tokenizer (null when it has no tokenizer.json)
  const { model, tokenizer } = loadModel(base.modelDir);
  if (!tokenizer) throw new Error(`${base.modelDir}: no tokenizer`);

  // Fine-tuning data: later Brown documents, packed into sequences of 64 tokens.
  const texts = loadBrownCorpus().train.slice(100, 130).map((d) => d.text);
  const train = packDocuments(tokenizeTexts(texts, tokenizer), { seqLen: 64, eosId: tokenizer.eosId! });
  const heldOut = Array.from({ length: 8 }, (_, i) => train.inputIds.subarray(i * 64, (i + 1) * 64));

  // 2. surgery: AdaMoE null experts (4 nulls, top-3) + LoRA on the router and experts
  applySurgery(model, [nullExpertsPass({ m: 4, topK: 3 })]);
  applyLora(model, { r: 8, alpha: 16, targets: ['gate', 'gate2', 'w1', 'w2', 'w3'] });
  const before = perplexity(model, heldOut);

  // 3. train the LoRA adapters and gate2, with AdaMoE's balance loss annealed after the first epoch
  const balance = createWeightedAuxLoss({ name: 'adamoe-balance', weight: { type: 'per-epoch', values: [0.02, 0.01] } });
  await finetune({
    runDir: `${out}/adamoe-run`, model, train, batchSize: 8, auxLosses: [balance], save: 'none',
    trainer: { steps: 80, lr: 5e-3, trainable: ['lora', 'gate2'], seed: 0 },
  });
  const after = perplexity(model, heldOut);

  // 4. save: a Hugging Face directory (moe-tune's config keys, the tokenizer) that loadModel reloads
  //    exactly and `moe-tune generate --model runs/example/adamoe --prompt "The jury"` runs on
  await saveModel(model, `${out}/adamoe`, { force: true, tokenizer });
  return { model, before: before.nll, after: after.nll, loadBefore: before.routerStats!.load, load: after.routerStats!.load };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().then((r) => console.log(`NLL ${r.before.toFixed(3)} -> ${r.after.toFixed(3)}; experts per token ${r.loadBefore.toFixed(2)} -> ${r.load.toFixed(2)}`));
}
