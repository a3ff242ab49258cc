/**
 * `moe-tune surgery --model DIR --pass SPEC [--pass SPEC]... --out DIR [--force] [--data FILE]`:
 * applies surgery passes in order and saves the new model (with its moe_tune config keys) to a
 * new directory, printing what each pass did and, with --data, the step-0 loss change.
 */
import type { Command } from 'commander';
import { applySurgery, formatSurgeryReport, parseSurgerySpec, SURGERY_PASSES, type SurgeryPass } from '../../adapters/index.js';
import { readTokenSequences } from '../../eval/token-sequences.js';
import { parseFloatDtype } from '../../io/index.js';
import { Tensor } from '../../tensor/index.js';
import { examples, type CliCommand } from '../command.js';
import { openModel, openTokenizer, requireFile } from '../model-access.js';
import { writeModelDir } from '../model-output.js';
import { collect, intArg } from '../options.js';
import { printJson } from '../output.js';
import { requireFreshOut } from '../run-dir.js';

interface SurgeryCliOptions {
  model: string;
  pass: string[];
  out: string;
  force?: boolean;
  data?: string;
  batch: number;
  seed: number;
  json?: boolean;
  dtype?: string;
}

/** The first sequences of a data file as one [B, T] batch (cut to the shortest, at most 128 tokens). */
function stepZeroBatch(file: string, modelDir: string, vocabSize: number, n: number): Tensor {
  const seqs = readTokenSequences(file, { vocabSize, tokenizer: () => openTokenizer(modelDir) }).map((s) => s.ids).filter((ids) => ids.length >= 2).slice(0, n);
  if (seqs.length === 0) throw new Error(`${file}: no sequence of 2 or more tokens for the step-0 loss`);
  const T = Math.min(128, ...seqs.map((s) => s.length));
  const ids = new Int32Array(seqs.length * T);
  seqs.forEach((s, b) => ids.set(s.slice(0, T), b * T));
  return new Tensor(ids, [seqs.length, T]);
}

async function surgeryAction(o: SurgeryCliOptions): Promise<void> {
  requireFreshOut(o.out, o.force);
  if (o.data) requireFile(o.data, 'data file');
  const passes: SurgeryPass[] = o.pass.map((spec) => {
    try {
      return parseSurgerySpec(spec);
    } catch (err) {
      throw new Error(`--pass '${spec}': ${(err as Error).message}`);
    }
  });
  // the passes are checked and applied on the skeleton first (quant/skeleton.ts): a pass that does not fit fails before the load
  const { model, config } = openModel(o.model, (skeleton) => applySurgery(skeleton, passes, { seed: o.seed }));
  const batch = o.data ? { ids: stepZeroBatch(o.data, o.model, config.vocabSize, o.batch) } : undefined;
  const { report } = applySurgery(model, passes, { seed: o.seed, batch });
  await writeModelDir(model, o.out, { force: o.force, source: o.model, ...(o.dtype !== undefined ? { dtype: parseFloatDtype(o.dtype) } : {}) });
  if (o.json) {
    printJson({ model: o.model, out: o.out, architecture: model.config.architecture, passes: report.passes });
    return;
  }
  for (const line of formatSurgeryReport(report)) process.stdout.write(`${line}\n`);
  process.stdout.write(`wrote ${o.out} (${model.config.architecture})\n`);
}

export const surgeryCommand: CliCommand = {
  name: 'surgery',
  register(program: Command) {
    program.command('surgery')
      .description('apply surgery passes (null experts, ternary router rows, LoRA, Mo-LoRA, FFN decomposition) and save the new model; prints what each pass did')
      .requiredOption('--model <dir>', 'model directory (float or 4-bit)')
      .requiredOption('--pass <spec>', 'NAME:key=value,... (repeatable, applied in order; list values use |)', collect)
      .requiredOption('--out <dir>', 'new model directory (written atomically)')
      .option('--force', 'replace an existing non-empty --out')
      .option('--data <file>', 'JSONL ({"input_ids"} or {"text"}) for the step-0 loss before and after each pass')
      .option('--batch <n>', 'sequences of --data in the step-0 batch', intArg(1), 4)
      .option('--seed <n>', 'seed of the new weights', intArg(0), 0)
      .option('--dtype <dtype>', "storage dtype of the written model (f32, bf16, f16; default: the input checkpoint's)")
      .option('--json', 'print the report as JSON')
      .addHelpText('after', examples([
        ['moe-tune surgery --model ./mixtral --pass null-experts:m=8,top_k=3 --out ./mixtral-adamoe', 'AdaMoE null experts: gate2 = gate tiled, top-3 over 8 + 8'],
        ['moe-tune surgery --model ./mixtral --pass null-experts:m=8,top_k=3 --pass lora:r=8,targets=gate|gate2|w1|w2|w3 --out ./m --data ids.jsonl', 'then LoRA; reports the step-0 loss change'],
        ['moe-tune surgery --model ./llama --pass decompose-ffn:experts=8 --out ./llama-xmoe', 'XMoE: each FFN into 8 experts (the dense function at t=1, capacity=8)'],
        ['moe-tune surgery --model ./llama --pass mo-lora:experts=4,r=8,top_k=4,null=5 --out ./llama-m5k4', 'AdaMoE Mo-LoRA m5k4'],
      ]))
      .addHelpText('after', () => `\nPasses: ${SURGERY_PASSES.map((e) => `${e.name}(${Object.entries(e.keys).map(([k, v]) => (v === undefined ? k : `${k}=${String(v)}`)).join(', ')})`).join('; ')}\n`)
      .action((o: SurgeryCliOptions) => surgeryAction(o));
  },
};
