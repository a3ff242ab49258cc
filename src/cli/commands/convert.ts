/**
 * `moe-tune convert decompose|merge|export-peft|import-peft|quantize`: model conversions. Every --out is
 * written atomically (temp directory, then rename) and never replaces a non-empty directory
 * without --force.
 */
import type { Command } from 'commander';
import { decomposeFfn, exportPeftAdapter, importPeftAdapter, mergeLora } from '../../convert/index.js';
import { checkpointFloatDtype, parseFloatDtype, type FloatStorageDtype } from '../../io/index.js';
import { dequantizeModel, loadModelQuantized, saveQuantizedModel } from '../../quant/index.js';
import { examples, type CliCommand } from '../command.js';
import { openModel } from '../model-access.js';
import { tokenizerFiles, writeModelDir } from '../model-output.js';
import { intArg } from '../options.js';
import { printJson } from '../output.js';
import { requireFreshOut } from '../run-dir.js';

interface CommonOptions {
  model: string;
  out: string;
  force?: boolean;
  json?: boolean;
  /** Storage dtype of the written model's float tensors (default: the input checkpoint's). */
  dtype?: string;
}

/** How a command writes its model: tokenizer / generation files of the input carried, --dtype or the input's dtype. */
function output(o: CommonOptions): { force?: boolean; source: string; dtype: FloatStorageDtype } {
  return { force: o.force, source: o.model, dtype: o.dtype === undefined ? checkpointFloatDtype(o.model) : parseFloatDtype(o.dtype) };
}

function done(o: CommonOptions, what: string, extra: Record<string, unknown> = {}): void {
  if (o.json) printJson({ model: o.model, out: o.out, ...extra });
  else process.stdout.write(`${what}\nwrote ${o.out}\n`);
}

async function decomposeAction(o: CommonOptions & { experts: number; layers?: string }): Promise<void> {
  requireFreshOut(o.out, o.force);
  const layers = o.layers === undefined ? undefined : o.layers.split(',').map((s) => {
    const n = Number(s.trim());
    if (!Number.isInteger(n) || n < 0) throw new Error(`--layers '${o.layers}': expected layer indices like 0,2,4`);
    return n;
  });
  const { model } = openModel(o.model);
  const res = decomposeFfn(model, { experts: o.experts, ...(layers ? { layers } : {}) });
  await writeModelDir(res.model, o.out, output(o));
  done(o, res.notes.join('\n'), { architecture: res.model.config.architecture, experts: o.experts, notes: res.notes });
}

async function mergeAction(o: CommonOptions & { adapter?: string }): Promise<void> {
  requireFreshOut(o.out, o.force);
  const out = output(o);
  const { model, quantized } = openModel(o.model);
  // QLoRA: the 4-bit base is dequantised and the LoRA folded into it; the result is a float model whose base
  // weights are the NF4-rounded ones the adapters trained against (not the original float checkpoint)
  const dequantised = quantized ? dequantizeModel(model).length : 0;
  let imported = 0;
  if (o.adapter) imported = importPeftAdapter(model, o.adapter).modules.length;
  const merged = mergeLora(model);
  await writeModelDir(merged, o.out, out);
  const note = dequantised > 0 ? `; dequantised ${dequantised} NF4 linears: the base weights are the NF4-rounded base the LoRA trained on, stored ${out.dtype}` : `; stored ${out.dtype}`;
  done(o, `merged LoRA into ${merged.config.architecture}${o.adapter ? ` (${imported} modules from ${o.adapter})` : ''}${note}`,
    { architecture: merged.config.architecture, adapter: o.adapter ?? null, dtype: out.dtype, dequantized: dequantised, nf4_rounded_base: dequantised > 0 });
}

async function exportAction(o: CommonOptions & { base?: string }): Promise<void> {
  requireFreshOut(o.out, o.force);
  const { model } = openModel(o.model);
  const res = await exportPeftAdapter(model, o.out, { baseModelNameOrPath: o.base ?? null, force: o.force });
  done(o, [`PEFT adapter: ${res.keys.length / 2} LoRA modules (${res.files.join(', ')})`, ...res.notes].join('\n'), { files: res.files, keys: res.keys.length, config: res.config, notes: res.notes });
}

async function importAction(o: CommonOptions & { adapter: string }): Promise<void> {
  requireFreshOut(o.out, o.force);
  const { model } = openModel(o.model);
  const res = importPeftAdapter(model, o.adapter);
  await writeModelDir(model, o.out, output(o));
  done(o, `applied the PEFT adapter ${o.adapter} to ${res.modules.length} modules`, { adapter: o.adapter, modules: res.modules, base_model_name_or_path: res.baseModelNameOrPath });
}

async function quantizeAction(o: CommonOptions & { dtype?: string; doubleQuant: boolean; blockSize?: number }): Promise<void> {
  requireFreshOut(o.out, o.force);
  const dtype: FloatStorageDtype | undefined = o.dtype === undefined ? undefined : parseFloatDtype(o.dtype);
  const t0 = performance.now();
  const q = loadModelQuantized(o.model, { doubleQuant: o.doubleQuant, ...(o.blockSize ? { blockSize: o.blockSize } : {}) });
  if (q.source === 'nf4') throw new Error(`${o.model}: already a 4-bit model (config.json has quantization_config)`);
  const loadMs = performance.now() - t0;
  const floatDtype = dtype ?? checkpointFloatDtype(o.model);
  await saveQuantizedModel(q.model, o.out, { dtype: floatDtype, force: o.force, extraFiles: tokenizerFiles(o.model) });
  const seconds = (performance.now() - t0) / 1000;
  const s = q.stats;
  done(o, `NF4${o.doubleQuant ? ' (double quantisation)' : ''}: ${s.quantized.length} linears, ${s.quantizedParams} parameters in ${s.quantizedBytes} bytes; ${s.floatParams} float parameters stored ${floatDtype}; ${(loadMs / 1000).toFixed(1)} s to quantise, ${seconds.toFixed(1)} s in all`,
    { quantized: s.quantized.length, quantizedParams: s.quantizedParams, quantizedBytes: s.quantizedBytes, floatParams: s.floatParams, floatDtype, doubleQuant: o.doubleQuant, seconds });
}

const DTYPE_HELP = "storage dtype of the written model (f32, bf16, f16; default: the input checkpoint's)";

function common(cmd: Command): Command {
  return cmd
    .requiredOption('--model <dir>', 'model directory')
    .requiredOption('--out <dir>', 'output directory (written atomically)')
    .option('--force', 'replace an existing non-empty --out')
    .option('--json', 'print the result as JSON');
}

export const convertCommand: CliCommand = {
  name: 'convert',
  register(program: Command) {
    const convert = program.command('convert')
      .description('model conversions: XMoE FFN decomposition, LoRA merge, PEFT adapter export / import, NF4 quantisation')
      .addHelpText('after', examples([
        ['moe-tune convert decompose --model ./llama --experts 8 --out ./llama-xmoe', 'dense FFNs -> 8 small experts each (XMoE)'],
        ['moe-tune convert merge --model runs/x/final/model --out ./merged', 'fold LoRA into the base weights (a plain Llama / Mixtral)'],
        ['moe-tune convert export-peft --model runs/x/final/model --out ./adapter --base meta-llama/Llama-2-7b-hf', 'adapter_config.json + adapter_model.safetensors'],
        ['moe-tune convert import-peft --model ./llama --adapter ./adapter --out ./llama-lora', 'a PEFT adapter onto a base model'],
        ['moe-tune convert quantize --model ./olmoe --out ./olmoe-nf4', 'a 4-bit NF4 model (QLoRA base), loaded straight into the packed form'],
      ]));
    common(convert.command('decompose'))
      .description("XMoE (paper 001): each dense FFN -> N small experts and a zero router, outputs scaled by N (moe-tune's choice: the dense function at threshold t=1, capacity=N)")
      .requiredOption('--experts <n>', 'experts per FFN (must divide intermediate_size)', intArg(2))
      .option('--layers <list>', 'decoder layers to decompose, e.g. 1,3,5 (default: all)')
      .addHelpText('after', examples([['moe-tune convert decompose --model ./llama --experts 8 --out ./llama-xmoe', 'every FFN into 8 experts']]))
      .option('--dtype <dtype>', DTYPE_HELP)
      .action((o: CommonOptions & { experts: number; layers?: string }) => decomposeAction(o));
    common(convert.command('merge'))
      .description('fold LoRA (of the model, or of a PEFT --adapter applied first) into the base weights')
      .option('--adapter <dir>', 'a PEFT adapter directory to apply before merging')
      .option('--dtype <dtype>', DTYPE_HELP)
      .addHelpText('after', examples([
        ['moe-tune convert merge --model runs/x/final/model --out ./merged', 'a model saved with LoRA'],
        ['moe-tune convert merge --model ./llama --adapter ./adapter --out ./merged', 'a base plus a PEFT adapter'],
        ['moe-tune convert merge --model runs/qlora/final/model --out ./merged --dtype bf16', 'a QLoRA run: the NF4 base dequantised, LoRA folded in, bf16'],
      ]))
      .action((o: CommonOptions & { adapter?: string }) => mergeAction(o));
    common(convert.command('export-peft'))
      .description("write the model's LoRA as a PEFT adapter (adapter_config.json + adapter_model.safetensors, PEFT key names)")
      .option('--base <name>', 'base_model_name_or_path for adapter_config.json (a Hub id or a path)')
      .addHelpText('after', examples([['moe-tune convert export-peft --model runs/x/final/model --out ./adapter --base meta-llama/Llama-2-7b-hf', 'loadable with PeftModel.from_pretrained']]))
      .action((o: CommonOptions & { base?: string }) => exportAction(o));
    common(convert.command('import-peft'))
      .description('apply a PEFT LoRA adapter to a model and save the model with its LoRA layers')
      .requiredOption('--adapter <dir>', 'PEFT adapter directory')
      .option('--dtype <dtype>', DTYPE_HELP)
      .addHelpText('after', examples([['moe-tune convert import-peft --model ./llama --adapter ./adapter --out ./llama-lora', 'then train / eval / merge it']]))
      .action((o: CommonOptions & { adapter: string }) => importAction(o));
    common(convert.command('quantize'))
      .description('write the model with its linears in 4-bit NF4 (QLoRA; bitsandbytes-style tensors, transformers quantization_config); quantised straight from the stored bytes, tensor by tensor')
      .option('--dtype <dtype>', 'storage dtype of the parameters that stay float (f32, bf16, f16; default: the source\'s)')
      .option('--no-double-quant', 'keep the block scales in float32 (default: 8-bit, double quantisation)')
      .option('--block-size <n>', 'values per NF4 block (default 64)', intArg(2))
      .addHelpText('after', examples([
        ['moe-tune convert quantize --model ./olmoe --out ./olmoe-nf4', 'then: moe-tune train --model ./olmoe-nf4 ...'],
        ['moe-tune convert quantize --model ./llama --out ./llama-nf4 --dtype bf16', 'norms / embeddings / gates / head stored bf16'],
      ]))
      .action((o: CommonOptions & { dtype?: string; doubleQuant: boolean; blockSize?: number }) => quantizeAction(o));
  },
};
