/**
 * `moe-tune eval --model DIR --data FILE.jsonl [--task ppl|mc] [--router SPEC] [--json]`:
 * perplexity over JSONL sequences, or multiple-choice accuracy, with router statistics.
 */
import type { Command } from 'commander';
import * as path from 'node:path';
import type { CausalLM } from '../../models/causal-lm.js';
import { multipleChoice, readMultipleChoice, type McResult } from '../../eval/multiple-choice.js';
import { perplexity, type PerplexityResult } from '../../eval/perplexity.js';
import { currentRouterText, formatRouterSpec } from '../../eval/router-choice.js';
import { readTokenSequences } from '../../eval/token-sequences.js';
import { checkWindowOptions, type WindowOptions } from '../../eval/sliding-windows.js';
import type { Router } from '../../routers/router.js';
import { routerHelp } from '../../routers/registry.js';
import { getBackend } from '../../tensor/index.js';
import { examples, type CliCommand } from '../command.js';
import { routingJson } from '../json-fields.js';
import { openModel, openTokenizer, requireFile, routerOption } from '../model-access.js';
import { DATA_FORMATS, type ColumnMap, type DataFormat } from '../../data/record-format.js';
import { NAMED_CHAT_TEMPLATES } from '../../data/chat-templates.js';
import { choiceArg, columnsArg, intArg } from '../options.js';
import { resolveModelDir } from '../model-source.js';
import { note, printFields, printJson, printTable, progress, thousands } from '../output.js';

export type EvalTask = 'ppl' | 'mc';

interface EvalOptions {
  model: string;
  data: string;
  task: EvalTask;
  router?: string;
  batch: number;
  delimiter: string;
  perItem?: boolean;
  json?: boolean;
  chatTemplate?: string;
  columns?: ColumnMap;
  format?: DataFormat;
  maxLength?: number;
  stride?: number;
}

/** Scores a model on a data file for one task; shared by eval and sweep. */
export interface TaskRunner {
  run(router: Router | undefined): { ppl?: PerplexityResult; mc?: McResult };
  /** Items (sequences or questions) in the file. */
  size: number;
}

export interface TaskRunnerOptions {
  batch: number;
  delimiter: string;
  quiet?: boolean;
  /** --chat-template FILE|NAME for a model directory without one. */
  chatTemplate?: string;
  /** --columns: our field -> the file's column. */
  columns?: ColumnMap;
  format?: DataFormat;
  /** ppl: --max-length / --stride, scoring longer sequences in strided sliding windows. */
  maxLength?: number;
  stride?: number;
}

/**
 * The sliding windows of --max-length / --stride (either one turns them on; the max length defaults to the
 * model's max_position_embeddings, the stride to the max length), or undefined: whole sequences.
 */
function windowOf(opts: TaskRunnerOptions, maxPositions: number | null): WindowOptions | undefined {
  if (opts.maxLength === undefined && opts.stride === undefined) return undefined;
  const maxLength = opts.maxLength ?? maxPositions;
  if (maxLength === null) throw new Error('--stride: the model config has no max_position_embeddings; give --max-length');
  if (maxPositions !== null && maxLength > maxPositions) {
    throw new Error(`--max-length: ${maxLength} is more than the model's max_position_embeddings ${maxPositions}`);
  }
  const window = { maxLength, stride: opts.stride ?? maxLength };
  checkWindowOptions(window, opts.stride !== undefined ? '--stride' : '--max-length');
  return window;
}

export function taskRunner(model: CausalLM, modelDir: string, data: string, task: EvalTask, opts: TaskRunnerOptions): TaskRunner {
  const V = model.config.vocabSize;
  if (task === 'mc') {
    const items = readMultipleChoice(data, V, opts.columns ?? {});
    const needsTok = items.some((i) => i.kind === 'text');
    const tokenizer = needsTok ? openTokenizer(modelDir) : undefined;
    return {
      size: items.length,
      run(router) {
        const bar = progress('multiple choice');
        const mc = multipleChoice(model, items, { tokenizer, router, delimiter: opts.delimiter, file: data, onProgress: opts.quiet ? undefined : bar.update });
        bar.done();
        return { mc };
      },
    };
  }
  const window = windowOf(opts, model.config.maxPositionEmbeddings ?? null);
  const read = readTokenSequences(data, {
    vocabSize: V, maxPositions: window ? null : model.config.maxPositionEmbeddings, tokenizer: () => openTokenizer(modelDir, opts.chatTemplate),
    ...(opts.columns ? { columns: opts.columns } : {}), ...(opts.format ? { format: opts.format } : {}),
  });
  const seqs = read.map((s) => s.ids);
  const masks = read.some((s) => s.mask !== null) ? read.map((s) => s.mask) : undefined;
  return {
    size: seqs.length,
    run(router) {
      const bar = progress('perplexity');
      const ppl = perplexity(model, seqs, { router, batch: opts.batch, onProgress: opts.quiet ? undefined : bar.update, ...(masks ? { masks } : {}), ...(window ? { window } : {}) });
      bar.done();
      return { ppl };
    },
  };
}

function evalAction(opts: EvalOptions): void {
  requireFile(opts.data, 'data file');
  const router = opts.router ? routerOption(opts.router) : undefined;
  const t0 = performance.now();
  const denseRouter = (m: CausalLM): void => {
    if (router && m.moeBlocks().length === 0) throw new Error(`--router: ${opts.model} is a dense model (${m.config.architecture}); routers apply to MoE layers`);
  };
  const { model, config } = openModel(opts.model, denseRouter);
  const runner = taskRunner(model, opts.model, opts.data, opts.task, {
    batch: opts.batch, delimiter: opts.delimiter, quiet: opts.json,
    ...(opts.chatTemplate ? { chatTemplate: opts.chatTemplate } : {}), ...(opts.columns ? { columns: opts.columns } : {}), ...(opts.format ? { format: opts.format } : {}),
    ...(opts.maxLength !== undefined ? { maxLength: opts.maxLength } : {}), ...(opts.stride !== undefined ? { stride: opts.stride } : {}),
  });
  const loadSeconds = (performance.now() - t0) / 1000;
  const t1 = performance.now();
  const { ppl, mc } = runner.run(router);
  const seconds = (performance.now() - t1) / 1000;
  const stats = ppl?.routerStats ?? mc?.routerStats ?? null;
  const flops = stats?.flops ?? null;
  const routerText = router ? formatRouterSpec(router.spec) : currentRouterText(model);
  const base = {
    model: opts.model,
    data: opts.data,
    task: opts.task,
    router: routerText,
    router_source: router ? '--router' : routerText ? 'config' : null,
    backend: getBackend().name,
  };
  const routing = routingJson(stats);
  if (opts.json) {
    if (ppl) printJson({ ...base, nll: ppl.nll, ppl: ppl.ppl, tokens: ppl.tokens, sequences: ppl.sequences, ...routing, seconds, load_seconds: loadSeconds });
    else if (mc) {
      printJson({
        ...base, acc: mc.accuracy, acc_norm: mc.accNorm, items: mc.items, acc_norm_by: mc.normalisation, ...routing,
        seconds, load_seconds: loadSeconds,
        ...(opts.perItem ? { per_item: mc.perItem.map((r) => ({ line: r.line, label: r.label, pred: r.pred, pred_norm: r.predNorm, log_likelihoods: r.logLikelihoods, lengths: r.lengths })) } : {}),
      });
    }
    return;
  }
  const rows: [string, string][] = [['model', `${opts.model} (${config.architecture})`], ['data', `${path.resolve(opts.data)} (${runner.size} ${opts.task === 'mc' ? 'items' : 'sequences'})`]];
  if (routerText) rows.push(['router', `${routerText}${router ? '' : ' (from the config)'}`]);
  if (ppl) {
    rows.push(['nll', `${ppl.nll.toFixed(6)} nats / token over ${thousands(ppl.tokens)} tokens`]);
    rows.push(['ppl', ppl.ppl.toFixed(4)]);
  }
  if (mc) {
    rows.push(['acc', `${mc.accuracy.toFixed(4)} (${mc.perItem.filter((r) => r.pred === r.label).length} / ${mc.items})`]);
    rows.push(['acc_norm', `${mc.accNorm.toFixed(4)} (by ${mc.normalisation})`]);
  }
  if (stats) {
    rows.push(['load', `${stats.load.toFixed(4)} activated experts per token`]);
    if (flops) rows.push([`FLOPs vs top-${flops.baselineTopK}`, `MoE layers ${flops.moeLayer.ratio.toFixed(4)}, whole model ${flops.model.ratio.toFixed(4)}`]);
    if (stats.droppedRate > 0) rows.push(['dropped', `${(stats.droppedRate * 100).toFixed(2)}% of selections`]);
    if (stats.bypassRate > 0) rows.push(['bypassed', `${(stats.bypassRate * 100).toFixed(2)}% of (layer, token) pairs ran no expert`]);
  }
  rows.push(['backend', `${getBackend().name} (${seconds.toFixed(2)} s)`]);
  printFields(rows);
  if (stats && stats.layers.length > 0) {
    process.stdout.write('\n');
    printTable(['layer', 'load', 'tokens per expert', 'bypassed', 'dropped'], stats.layers.map((l) => [
      String(l.layer), l.load.toFixed(3), l.tokensPerExpert.join(' '), String(l.bypassedTokens), String(l.droppedAssignments),
    ]));
  }
}

export const evalCommand: CliCommand = {
  name: 'eval',
  register(program: Command) {
    program.command('eval')
      .description('perplexity (mean next-token NLL, each sequence scored on its own) or multiple-choice accuracy, with per-layer router statistics')
      .requiredOption('--model <dir|org/name>', 'model directory, or a Hugging Face repo id (from the Hub cache; pulled when missing; HF_HUB_OFFLINE=1 uses only the cache)')
      .requiredOption('--data <file>', '.jsonl / .json / .csv / .tsv: the lines train accepts (input_ids, text, prompt + completion, messages, Alpaca, ShareGPT) for ppl; {"context", "choices", "label"} (or PIQA\'s goal / sol1 / sol2 / label) for mc')
      .option('--task <task>', 'ppl (perplexity) or mc (multiple choice by log-likelihood)', choiceArg(['ppl', 'mc'] as const), 'ppl')
      .option('--router <spec>', 'route every MoE layer with NAME:key=value,... instead of the config\'s router (e.g. top-p:p=0.4)')
      .option('--batch <n>', 'sequences of equal length per forward pass (ppl)', intArg(1), 1)
      .option('--delimiter <text>', 'text between context and choice (mc)', ' ')
      .option('--max-length <n>', 'ppl: tokens per sliding window (default: the model\'s max_position_embeddings)', intArg(2))
      .option('--stride <n>', 'ppl: score sequences longer than --max-length in windows starting every N tokens; each window scores only the tokens the previous one did not (default: --max-length, disjoint windows)', intArg(1))
      .option('--format <format>', `how lines are read (ppl): ${DATA_FORMATS.join(', ')}`, choiceArg(DATA_FORMATS), 'auto')
      .option('--columns <map>', 'our field = the file\'s column, comma-separated (e.g. prompt=question,completion=answer; mc: context=goal,choices=sol1+sol2)', columnsArg)
      .option('--chat-template <file|name>', `chat template when the model directory has none: a Jinja file or ${Object.keys(NAMED_CHAT_TEMPLATES).join(', ')}`)
      .option('--per-item', 'with --json and --task mc: log-likelihoods and predictions per item')
      .option('--json', 'print one JSON object (nll, ppl, tokens, load, layers, router, ...)')
      .addHelpText('after', `${examples([
        ['moe-tune eval --model ./tiny-mixtral --data ids.jsonl --json', 'NLL, perplexity, tokens, load and per-layer router statistics'],
        ['moe-tune eval --model ./mixtral --data val.jsonl --router top-p:p=0.4', 'the same checkpoint under dynamic top-p routing'],
        ['moe-tune eval --model ./mixtral --data arc.jsonl --task mc', 'multiple-choice accuracy (acc and acc_norm)'],
        ['moe-tune eval --model ./llama --data wiki.jsonl --max-length 1024 --stride 512', 'long documents in sliding windows, 512+ tokens of context each'],
      ])}
Multiple-choice fields: context | ctx | question | query | prompt; choices | endings | options (or ARC's
{"text": [...], "label": [...]}); label | answer | gold | answerKey (index, numeric string or letter).
PIQA: goal, sol1, sol2, label. Pre-tokenised: context_ids + choice_ids. Text needs the model directory's tokenizer.json.
ppl: prompt / completion and chat lines score only the completion / assistant tokens, as train learns them;
a sequence longer than max_position_embeddings is an error naming its line, unless --stride / --max-length
score it in strided sliding windows (as in Hugging Face's "Perplexity of fixed-length models"). Parquet files are refused (convert to JSONL).
`)
      .addHelpText('after', () => `\nRouters (NAME:key=default; a key without one is required or derived): ${routerHelp()}\n`)
      .action(async (opts: EvalOptions) => evalAction({ ...opts, model: await resolveModelDir(opts.model, { log: note }) }));
  },
};
