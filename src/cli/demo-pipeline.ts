/**
 * The demo: the whole moe-tune pipeline on the embedded Brown corpus, in about 100 s of CPU time on
 * two cores, with no download:
 *
 *   1. pretrain a small Mixtral-style MoE (4 experts, top-2) from scratch, BPE tokenizer included
 *   2. AdaMoE null-expert surgery (m = 4 null experts, top-3): the function is preserved at step 0
 *   3. 4-bit (NF4) fine-tune with LoRA on gate / gate2 / w1 / w2 / w3 and the annealed AdaMoE
 *      balance loss ("tight to loose"), on samples of other Brown documents (later genres) than
 *      pretraining: the held-out loss drops while the load moves below 2 experts per token
 *   4. evaluation: held-out perplexity and load of the pretrained and fine-tuned models
 *   5. a router sweep of the fine-tuned model (null-experts top-k = 1 ... 6): NLL against load
 *   6. the HTML report of the fine-tuning run
 *
 * Stages 1 and 3 run from recipes the demo writes into OUT/recipes/, so each can be re-run or
 * edited with `moe-tune pretrain` / `moe-tune train`.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { applySurgery, formatSurgeryReport, nullExpertsPass, stepZeroTrueExperts } from '../adapters/index.js';
import { loadBrownCorpus } from '../data/brown-corpus.js';
import { packDocuments } from '../data/packing.js';
import { tokenizeTexts } from '../data/text-dataset.js';
import type { MoeTokenizer } from '../data/tokenizer.js';
import { parseRouterSeries } from '../eval/router-sweep.js';
import { perplexity } from '../eval/perplexity.js';
import { writeFileAtomic, writeJsonAtomic } from '../io/index.js';
import type { CausalLM } from '../models/causal-lm.js';
import { loadRecipe, packedRows, runFinetuneRecipe, runPretrainRecipe, sweepPerplexity } from '../recipes/index.js';
import { buildRunReport } from '../report/run-report.js';
import { getBackend, Tensor } from '../tensor/index.js';
import { createProgress, type ProgressSink } from '../train/progress.js';
import type { Trainer } from '../train/trainer.js';
import { writeModelDir } from './model-output.js';

export interface DemoOptions {
  out: string;
  quick: boolean;
  progress?: ProgressSink;
  onTrainer?: (t: Trainer) => void;
  /** Stage and status lines. */
  log: (line: string) => void;
}

export interface DemoResult {
  out: string;
  report: string;
  seconds: number;
  stages: { name: string; seconds: number }[];
  pretrain: { steps: number; valPpl: number; unigramPpl: number; load: number | null };
  surgery: { stepZeroLoadExpected: number; lossChange: number | null };
  finetune: { steps: number; evalBefore: number | null; evalAfter: number | null; loadBefore: number | null; loadAfter: number | null; loadTarget: number };
  eval: { pretrained: { ppl: number; load: number | null }; finetuned: { ppl: number; load: number | null } };
  sweep: { router: string; load: number; nll: number | null }[];
  backend: string;
}

interface Sizes {
  hidden: number;
  ffn: number;
  layers: number;
  vocab: number;
  docs: number;
  seqLen: number;
  batch: number;
  steps: number;
  lr: number;
  ftSamples: number;
  ftSteps: number;
  ftLr: number;
  /** Fine-tuning samples come from other Brown documents than pretraining (another genre mix). */
  ftSkipDocs: number;
  ftMaxDocs: number | null;
  evalSeqs: number;
}

/** Full: about 100 s of CPU time with the native backend (src/cli/timings.ts has the measurement); quick: well under a minute (tests). */
const FULL: Sizes = { hidden: 128, ffn: 256, layers: 2, vocab: 1024, docs: 200, seqLen: 128, batch: 8, steps: 1200, lr: 3e-3, ftSamples: 1000, ftSteps: 300, ftLr: 5e-4, ftSkipDocs: 300, ftMaxDocs: null, evalSeqs: 48 };
const QUICK: Sizes = { hidden: 32, ffn: 64, layers: 2, vocab: 300, docs: 3, seqLen: 32, batch: 4, steps: 24, lr: 5e-3, ftSamples: 120, ftSteps: 16, ftLr: 5e-3, ftSkipDocs: 3, ftMaxDocs: 6, evalSeqs: 8 };

const N = 4;
const M = 4;
const K = 3;

function pretrainRecipeYaml(s: Sizes): string {
  return `# The demo's pretraining stage (moe-tune demo): a small Mixtral-style MoE on the Brown corpus.
name: demo-pretrain
paper: "moe-tune demo (no paper): a small MoE pretrained from scratch on the Brown corpus"
kind: pretrain
model:
  config:
    architectures: [MixtralForCausalLM]
    hidden_size: ${s.hidden}
    intermediate_size: ${s.ffn}
    num_hidden_layers: ${s.layers}
    num_attention_heads: 4
    num_key_value_heads: 2
    num_local_experts: ${N}
    num_experts_per_tok: 2
    max_position_embeddings: ${Math.max(128, s.seqLen)}
    rope_theta: 10000
  init: {std: 0.02}
tokenizer: {vocab_size: ${s.vocab}}
aux_losses:
  - {name: balance, weight: 0.01}
train: {lr: ${s.lr}, batch_size: ${s.batch}, seq_len: ${s.seqLen}, steps: ${s.steps}}
lr_schedule: {warmup_ratio: 0.05}
eval: {max_batches: ${Math.ceil(s.evalSeqs / 8)}}
data: {source: brown, max_docs: ${s.docs}}
`;
}

function finetuneRecipeYaml(s: Sizes): string {
  return `# The demo's fine-tuning stage (moe-tune demo): AdaMoE-style QLoRA on the null-expert model.
name: demo-adamoe-qlora
paper: "moe-tune demo, after AdaMoE (paper 004) §4.2: 4-bit base, LoRA on gate / gate2 / w1 / w2 / w3, annealed balance loss"
kind: finetune
quantization: {method: nf4}
lora: {r: 8, alpha: 16, targets: [gate, gate2, w1, w2, w3]}
aux_losses:
  - name: adamoe-balance
    weight: {type: per-epoch, values: [0.5, 0.05]}
optimizer: {weight_decay: 0.0}
train: {lr: ${s.ftLr}, batch_size: ${s.batch}, seq_len: ${s.seqLen}, steps: ${s.ftSteps}}
lr_schedule: {warmup_ratio: 0.05}
eval: {max_batches: ${Math.ceil(s.evalSeqs / 8)}, holdout_every: 10}
data: {source: brown, skip_docs: ${s.ftSkipDocs}, max_docs: ${s.ftMaxDocs ?? 'null'}, samples: ${s.ftSamples}, sample_words: 40}
`;
}

/** Brown's held-out documents as packed sequences (the first n). */
function validationRows(tok: MoeTokenizer, seqLen: number, n: number): Int32Array[] {
  const docs = tokenizeTexts(loadBrownCorpus().validation.slice(0, 8), tok, { addBos: false });
  return packedRows(packDocuments(docs, { seqLen, eosId: tok.eosId ?? 0 }), n);
}

function evalOn(model: CausalLM, rows: readonly Int32Array[]): { ppl: number; nll: number; load: number | null } {
  const r = perplexity(model, rows, { batch: 8 });
  return { ppl: r.ppl, nll: r.nll, load: r.routerStats?.load ?? null };
}

export async function runDemo(o: DemoOptions): Promise<DemoResult> {
  const s = o.quick ? QUICK : FULL;
  const t0 = performance.now();
  const stages: { name: string; seconds: number }[] = [];
  let mark = performance.now();
  const stage = (name: string): void => {
    const now = performance.now();
    stages.push({ name, seconds: (now - mark) / 1000 });
    mark = now;
  };
  const progress = o.progress ?? createProgress({ stream: process.stdout });
  fs.mkdirSync(path.join(o.out, 'recipes'), { recursive: true });
  const preFile = path.join(o.out, 'recipes', 'demo-pretrain.yaml');
  const ftFile = path.join(o.out, 'recipes', 'demo-adamoe-qlora.yaml');
  writeFileAtomic(preFile, pretrainRecipeYaml(s));
  writeFileAtomic(ftFile, finetuneRecipeYaml(s));

  // 1. pretrain
  o.log(`[1/6] pretraining a ${N}-expert top-2 MoE (hidden ${s.hidden}, ${s.layers} layers) on ${s.docs} Brown documents for ${s.steps} steps (${preFile})`);
  const pre = await runPretrainRecipe(loadRecipe(preFile), { runDir: path.join(o.out, 'pretrain'), progress, onTrainer: o.onTrainer, log: o.log });
  const pr = pre.seeds[0]!.result;
  o.log(`      validation perplexity ${pr.metrics.valPpl.toFixed(2)} vs a unigram model's ${pr.metrics.unigramPpl.toFixed(2)}; model in ${pr.modelDir}`);
  stage('pretrain');
  if (pre.stopped) throw new Error(`demo stopped during pretraining; the checkpoint is in ${path.join(o.out, 'pretrain', 'checkpoints')}`);

  // 2. surgery
  const rows = validationRows(pr.tokenizer, s.seqLen, s.evalSeqs);
  const model = pr.model;
  const pretrained = evalOn(model, rows);
  const B = Math.min(4, rows.length);
  const ids = new Int32Array(B * s.seqLen);
  rows.slice(0, B).forEach((r, b) => ids.set(r, b * s.seqLen));
  o.log(`[2/6] AdaMoE surgery: ${M} null experts (gate2 = gate rows tiled), top-${K} over ${N} + ${M}`);
  const { report } = applySurgery(model, [nullExpertsPass({ m: M, topK: K })], { seed: 0, batch: { ids: new Tensor(ids, [B, s.seqLen]) } });
  for (const line of formatSurgeryReport(report)) o.log(`      ${line}`);
  const surgered = path.join(o.out, 'adamoe-model');
  await writeModelDir(model, surgered, { force: true, tokenizerFrom: pr.modelDir });
  stage('surgery');

  // 3. 4-bit fine-tune with LoRA
  o.log(`[3/6] QLoRA fine-tune: NF4 base, LoRA r 8 on gate/gate2/w1/w2/w3, AdaMoE balance loss 0.5 then 0.05, ${s.ftSteps} steps (${ftFile})`);
  const ft = await runFinetuneRecipe(loadRecipe(ftFile), { runDir: path.join(o.out, 'finetune'), modelDir: surgered, progress, onTrainer: o.onTrainer, log: o.log });
  const fr = ft.seeds[0]!;
  if (fr.stopped) throw new Error(`demo stopped during fine-tuning; the checkpoint is in ${path.join(fr.runDir, 'checkpoints')}`);
  const target = (K * N) / (N + M);
  o.log(`      eval loss ${fr.evalBefore?.loss.toFixed(4)} -> ${fr.evalAfter?.loss.toFixed(4)}, load ${fr.evalBefore?.load?.toFixed(3)} -> ${fr.evalAfter?.load?.toFixed(3)} experts per token (balanced target ${target.toFixed(2)})`);
  stage('finetune');

  // 4. eval
  o.log(`[4/6] evaluating on ${rows.length} held-out Brown sequences of ${s.seqLen} tokens`);
  const finetuned = evalOn(fr.model!, rows);
  const evalFile = path.join(fr.runDir, 'eval-brown-validation.json');
  writeJsonAtomic(evalFile, {
    sequences: rows.length, seq_len: s.seqLen,
    pretrained: { ppl: pretrained.ppl, nll: pretrained.nll, load: pretrained.load },
    finetuned_4bit_adamoe: { ppl: finetuned.ppl, nll: finetuned.nll, load: finetuned.load },
  });
  o.log(`      pretrained: ppl ${pretrained.ppl.toFixed(2)}, load ${pretrained.load?.toFixed(3)}; fine-tuned (4-bit, null experts): ppl ${finetuned.ppl.toFixed(2)}, load ${finetuned.load?.toFixed(3)}`);
  stage('eval');

  // 5. router sweep
  const series = [parseRouterSeries(`null-experts:m=${M},k=1..6`)];
  o.log(`[5/6] router sweep: null-experts top-k = 1 ... 6 (NLL against activated experts per token)`);
  const sweep = sweepPerplexity(fr.model!, rows, series, path.join(fr.runDir, 'sweep'), { model: fr.modelDir ?? fr.runDir, data: 'Brown validation' },
    (p) => o.log(`      ${p.router.padEnd(28)} load ${p.load.toFixed(3)}  nll ${p.nll?.toFixed(4)}`));
  stage('sweep');

  // 6. report
  const rep = buildRunReport(o.out, {}); // pretrain/ and finetune/: both runs on one page
  const reportFile = path.join(o.out, 'report.html');
  writeFileAtomic(reportFile, rep.html);
  o.log(`[6/6] report: ${rep.sections.length} sections (${rep.sections.join(', ')})`);
  stage('report');
  const seconds = (performance.now() - t0) / 1000;
  const result: DemoResult = {
    out: o.out,
    report: reportFile,
    seconds,
    stages,
    pretrain: { steps: pr.metrics.steps, valPpl: pr.metrics.valPpl, unigramPpl: pr.metrics.unigramPpl, load: pr.metrics.load },
    surgery: { stepZeroLoadExpected: stepZeroTrueExperts(N, M, K), lossChange: report.passes[0]?.loss?.change ?? null },
    finetune: { steps: fr.steps, evalBefore: fr.evalBefore?.loss ?? null, evalAfter: fr.evalAfter?.loss ?? null, loadBefore: fr.evalBefore?.load ?? null, loadAfter: fr.evalAfter?.load ?? null, loadTarget: target },
    eval: { pretrained: { ppl: pretrained.ppl, load: pretrained.load }, finetuned: { ppl: finetuned.ppl, load: finetuned.load } },
    sweep: [sweep.result.baseline, ...sweep.result.points].map((p) => ({ router: p.router, load: p.load, nll: p.nll })),
    backend: getBackend().name,
  };
  writeJsonAtomic(path.join(o.out, 'demo.json'), result);
  return result;
}
