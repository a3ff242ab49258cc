/** `moe-tune info --model DIR [--json]`: what a checkpoint is, from its config and headers only. */
import type { Command } from 'commander';
import { inspectModel, type ModelInfo } from '../../eval/model-info.js';
import { getBackend } from '../../tensor/index.js';
import { examples, type CliCommand } from '../command.js';
import { resolveModelDir } from '../model-source.js';
import { note, printFields, printJson, thousands } from '../output.js';

export function infoJson(info: ModelInfo, backend: string, threads: number): Record<string, unknown> {
  const e = info.experts;
  const p = info.parameters;
  return {
    model: info.dir,
    architecture: info.architecture,
    model_type: info.modelType,
    layers: info.layers,
    hidden_size: info.hiddenSize,
    intermediate_size: info.intermediateSize,
    vocab_size: info.vocabSize,
    heads: info.heads,
    kv_heads: info.kvHeads,
    head_dim: info.headDim,
    tie_word_embeddings: info.tieWordEmbeddings,
    rope_theta: info.ropeTheta,
    max_position_embeddings: info.maxPositionEmbeddings,
    experts: e ? {
      count: e.numExperts,
      top_k: e.topK,
      null_experts: e.nullExperts ? e.nullExperts.m : 0,
      null_experts_top_k: e.nullExperts?.topK ?? null,
      ternary_rows: e.ternary ? e.ternary.rows : null,
      zero_experts: e.ternary?.zeroExperts ?? 0,
      moe_layers: e.moeLayers,
      router: e.router,
      expert_intermediate_size: e.expertIntermediateSize,
      gate_scale: e.gateScale,
      shared_experts: e.sharedExpert ? e.sharedExpert.count ?? 1 : 0,
      shared_expert_intermediate_size: e.sharedExpert?.intermediateSize ?? null,
      shared_expert_gated: e.sharedExpert?.gated ?? null,
    } : null,
    parameters: {
      total: p.total,
      active_per_token: p.activePerToken,
      expert: p.expert,
      router: p.router,
      shared_expert: p.shared,
      embedding: p.embedding,
      other: p.other,
      active_experts_per_token: p.activeExperts,
      active_basis: p.activeBasis,
    },
    dtypes: info.dtypes,
    checkpoint_bytes: info.checkpointBytes,
    file_bytes: info.fileBytes,
    files: info.files,
    tensors: info.tensors,
    extensions: info.extensions,
    packed_4bit: info.packed ? { weights: info.packed.weights, parameters: info.packed.parameters, bytes: info.packed.bytes } : null,
    fp8_block: info.fp8Block,
    backend,
    backend_threads: threads,
  };
}

function printInfo(info: ModelInfo, backend: string, threads: number): void {
  const e = info.experts;
  const p = info.parameters;
  const rows: [string, string][] = [
    ['model', info.dir],
    ['architecture', `${info.architecture}${info.modelType ? ` (${info.modelType})` : ''}`],
    ['layers', `${info.layers} (hidden ${info.hiddenSize}, ffn ${info.intermediateSize}, heads ${info.heads} / kv ${info.kvHeads}, head dim ${info.headDim}, vocab ${info.vocabSize}${info.tieWordEmbeddings ? ', tied embeddings' : ''})`],
  ];
  if (e) {
    rows.push(['experts', `${e.numExperts} per MoE layer, top-${e.topK}, router ${e.router}, expert ffn ${e.expertIntermediateSize}${e.gateScale !== 1 ? `, gate scale ${e.gateScale}` : ''}`]);
    rows.push(['shared experts', e.sharedExpert ? `${e.sharedExpert.count ?? 1} (ffn ${e.sharedExpert.intermediateSize}${e.sharedExpert.gated ? ', sigmoid gate' : ''}; every token runs it)` : 'none']);
    rows.push(['null experts', e.nullExperts ? `${e.nullExperts.m} (top-${e.nullExperts.topK} over ${e.numExperts} + ${e.nullExperts.m}, ${e.nullExperts.mapping} mapping)` : 'none']);
    rows.push(['ternary rows', e.ternary ? `${e.ternary.rows} (2N + K, K = ${e.ternary.zeroExperts} zero experts)` : 'none']);
    rows.push(['MoE layers', `${e.moeLayers.length} of ${info.layers}: ${e.moeLayers.join(', ')}`]);
  } else rows.push(['experts', 'none (dense)']);
  rows.push(['parameters', `${thousands(p.total)} total, ${thousands(p.activePerToken)} active per token`]);
  rows.push(['', `(${p.activeBasis})`]);
  if (e) rows.push(['', `experts ${thousands(p.expert)}${p.shared ? `, shared experts ${thousands(p.shared)}` : ''}, routers ${thousands(p.router)}, embeddings ${thousands(p.embedding)}, other ${thousands(p.other)}`]);
  rows.push(['storage', `${Object.entries(info.dtypes).map(([d, n]) => `${d} x ${n}`).join(', ')} tensors; ${thousands(info.checkpointBytes)} bytes of tensor data in ${info.files.length} file(s) (${thousands(info.fileBytes)} bytes on disk)${info.fp8Block ? `; float8 weights with ${info.fp8Block[0]} x ${info.fp8Block[1]} block scales, read dequantised` : ''}`]);
  if (info.packed) rows.push(['4-bit', `${info.packed.weights} NF4 weights: ${thousands(info.packed.parameters)} parameters packed into ${thousands(info.packed.bytes)} bytes (${(info.packed.bytes / info.packed.parameters).toFixed(3)} bytes per parameter)`]);
  if (info.extensions.length) rows.push(['moe_tune keys', info.extensions.join(', ')]);
  rows.push(['backend', `${backend} (${threads} thread${threads === 1 ? '' : 's'})`]);
  printFields(rows);
}

export const infoCommand: CliCommand = {
  name: 'info',
  register(program: Command) {
    program.command('info')
      .description('describe a model directory: architecture, experts, parameter counts (total and active per token), storage dtypes and bytes; reads only config.json and the safetensors headers')
      .requiredOption('--model <dir|org/name>', 'Hugging Face model directory (config.json + safetensors), or a repo id resolved through the Hub cache (pulled when missing; HF_HUB_OFFLINE=1: cache only)')
      .option('--json', 'print one JSON object')
      .addHelpText('after', examples([
        ['moe-tune info --model ./tiny-mixtral', 'architecture, experts, parameters total / active, dtypes, bytes'],
        ['moe-tune info --model ./tiny-mixtral --json | jq .parameters', 'the same as JSON (fields in snake_case)'],
      ]))
      .action(async (opts: { model: string; json?: boolean }) => {
        const info = inspectModel(await resolveModelDir(opts.model, { log: note }));
        const backend = getBackend();
        if (opts.json) printJson(infoJson(info, backend.name, backend.threads));
        else printInfo(info, backend.name, backend.threads);
      });
  },
};
