/**
 * `moe-tune generate --model DIR --prompt TEXT [...]`: greedy or sampled generation with the KV
 * cache; stop strings and EOS end it.
 */
import type { Command } from 'commander';
import { generate } from '../../eval/generate.js';
import { currentRouterText, formatRouterSpec } from '../../eval/router-choice.js';
import { checkTokenIds } from '../../eval/token-sequences.js';
import type { MoeTokenizer } from '../../data/tokenizer.js';
import { routerHelp } from '../../routers/registry.js';
import { getBackend } from '../../tensor/index.js';
import { examples, type CliCommand } from '../command.js';
import { routingJson } from '../json-fields.js';
import { hasTokenizer, openModel, openTokenizer, routerOption } from '../model-access.js';
import { collect, intArg, numberArg } from '../options.js';
import { printJson } from '../output.js';

interface GenerateCliOptions {
  model: string;
  prompt?: string;
  promptIds?: string;
  maxNewTokens: number;
  temperature: number;
  topP: number;
  seed: number;
  stop?: string[];
  router?: string;
  cache: boolean;
  json?: boolean;
}

function parseIds(text: string, vocabSize: number): number[] {
  const parts = text.split(/[\s,]+/).filter((p) => p !== '');
  const ids = parts.map((p) => (/^\d+$/.test(p) ? Number(p) : Number.NaN));
  try {
    return checkTokenIds(ids.map((v, i) => (Number.isNaN(v) ? parts[i] : v)), vocabSize, 'prompt-ids');
  } catch (err) {
    throw new Error(`--prompt-ids: ${(err as Error).message}`);
  }
}

function generateAction(opts: GenerateCliOptions): void {
  if ((opts.prompt === undefined) === (opts.promptIds === undefined)) throw new Error('generate: give exactly one of --prompt TEXT or --prompt-ids "1,2,3"');
  const router = opts.router ? routerOption(opts.router) : undefined;
  const { model } = openModel(opts.model);
  let tok: MoeTokenizer | null = null;
  if (opts.prompt !== undefined || (opts.stop?.length ?? 0) > 0) tok = openTokenizer(opts.model);
  else if (hasTokenizer(opts.model)) tok = openTokenizer(opts.model);
  let prompt: number[];
  if (opts.prompt !== undefined) {
    prompt = tok!.encode(opts.prompt, { addEos: false });
    if (prompt.length === 0) {
      if (tok!.bosId === null) throw new Error('generate: the prompt is empty and the tokenizer has no BOS token to start from');
      prompt = [tok!.bosId];
    }
  } else prompt = parseIds(opts.promptIds!, model.config.vocabSize);
  const eos = tok?.eosId !== null && tok?.eosId !== undefined ? [tok.eosId] : undefined;
  const cfgEos = model.config.eosTokenId;
  const eosIds = [...new Set([...(eos ?? []), ...(cfgEos === null ? [] : Array.isArray(cfgEos) ? cfgEos : [cfgEos])])];
  const streaming = !opts.json && tok !== null && process.stdout.isTTY === true && (opts.stop?.length ?? 0) === 0;
  let printed = '';
  const t0 = performance.now();
  const result = generate(model, prompt, {
    maxNewTokens: opts.maxNewTokens,
    temperature: opts.temperature,
    topP: opts.topP,
    seed: opts.seed,
    stop: opts.stop,
    eosTokenIds: eosIds,
    decode: tok ? (ids) => tok!.decode(ids, { skipSpecial: true }) : undefined,
    useCache: opts.cache,
    router,
    onToken: streaming ? (() => {
      const generated: number[] = [];
      return (id: number) => {
        generated.push(id);
        const t = tok!.decode(generated, { skipSpecial: true });
        process.stdout.write(t.slice(printed.length));
        printed = t;
      };
    })() : undefined,
  });
  const seconds = (performance.now() - t0) / 1000;
  if (opts.json) {
    printJson({
      model: opts.model,
      prompt: opts.prompt ?? null,
      prompt_ids: prompt,
      text: result.text,
      ids: result.ids,
      finish_reason: result.finishReason,
      prompt_tokens: result.promptTokens,
      new_tokens: result.ids.length,
      router: router ? formatRouterSpec(router.spec) : currentRouterText(model),
      temperature: opts.temperature,
      top_p: opts.topP,
      seed: opts.seed,
      kv_cache: opts.cache,
      ...routingJson(result.routerStats),
      seconds,
      tokens_per_s: seconds > 0 ? result.ids.length / seconds : null,
      backend: getBackend().name,
    });
    return;
  }
  if (streaming) process.stdout.write('\n');
  else process.stdout.write(`${result.text ?? result.ids.join(' ')}\n`);
  process.stderr.write(`[${result.ids.length} tokens, ${result.finishReason}, ${(result.ids.length / Math.max(seconds, 1e-9)).toFixed(1)} tokens/s${result.routerStats ? `, load ${result.routerStats.load.toFixed(3)}` : ''}]\n`);
}

export const generateCommand: CliCommand = {
  name: 'generate',
  register(program: Command) {
    program.command('generate')
      .description('generate text from a prompt with the KV cache: greedy (temperature 0) or temperature / top-p sampling, seeded')
      .requiredOption('--model <dir>', 'model directory (with tokenizer.json for --prompt)')
      .option('--prompt <text>', 'prompt text (BOS as the tokenizer config says)')
      .option('--prompt-ids <ids>', 'prompt as token ids, e.g. "1,5,9" (no tokenizer needed)')
      .option('--max-new-tokens <n>', 'tokens to generate at most', intArg(0), 64)
      .option('--temperature <t>', '0 = greedy', numberArg(0), 0)
      .option('--top-p <p>', 'nucleus sampling mass in (0, 1]', numberArg(Number.MIN_VALUE, 1), 1)
      .option('--seed <s>', 'sampling seed', intArg(0), 0)
      .option('--stop <text>', 'stop string (repeatable); the output is cut before it', collect)
      .option('--router <spec>', 'route MoE layers with NAME:key=value,... (causal routers only)')
      .option('--no-cache', 'recompute the whole sequence each step (slow; for checking the KV cache)')
      .option('--json', 'print one JSON object (text, ids, finish_reason, load, ...)')
      .addHelpText('after', examples([
        ['moe-tune generate --model ./my-model --prompt "The quick brown fox"', 'greedy continuation, 64 tokens at most'],
        ['moe-tune generate --model ./my-model --prompt "Once" --temperature 0.8 --top-p 0.9 --seed 7 --stop "\\n"', 'seeded nucleus sampling, stopping at a newline'],
        ['moe-tune generate --model ./tiny-mixtral --prompt-ids 1,5,9 --max-new-tokens 8 --json', 'token ids in and out (no tokenizer needed)'],
      ]))
      .addHelpText('after', () => `\nRouters (NAME:key=default; a key without one is required or derived): ${routerHelp()}\n`)
      .action((opts: GenerateCliOptions) => generateAction(opts));
  },
};
