/**
 * The `moe-tune` command line: global options, the command list (src/cli/commands/index.ts), and
 * error handling. Any failure prints ONE line on stderr, `moe-tune: <message>`, and exits
 * non-zero; `--debug` adds the stack trace. A training run stopped by SIGINT / SIGTERM exits 130 /
 * 143 after its checkpoint (src/cli/stop-on-signal.ts).
 *
 * Global options apply before a command runs: `--threads N` sets MOE_TUNE_THREADS (read when the
 * native backend loads, which is on first use), then `--backend` selects the backend (default:
 * MOE_TUNE_BACKEND, else auto: native when the addon loads, js otherwise).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError, Option } from 'commander';
import { errorText } from '../io/index.js';
import { BACKEND_CHOICES, setBackend } from '../tensor/index.js';
import { COMMANDS } from './commands/index.js';
import { examples } from './command.js';
import { intArg } from './options.js';
import { interruptExitCode, interruptSignal } from './stop-on-signal.js';

const here = path.dirname(fileURLToPath(import.meta.url));

function packageVersion(): string {
  try {
    const pkg = JSON.parse(fs.readFileSync(path.resolve(here, '../../package.json'), 'utf8')) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

interface GlobalOptions {
  backend?: string;
  threads?: number;
  debug?: boolean;
}

/** The program with every command registered (no parsing, no side effects). */
export function buildProgram(): Command {
  const program = new Command('moe-tune');
  program
    .description('Adapt pretrained Mixture-of-Experts and dense LLMs: pretrain, surgery, (Q)LoRA fine-tuning from paper recipes, evaluate, generate, sweep routers, report, Hub pull / push.')
    .version(packageVersion(), '-V, --version')
    .addOption(new Option('--backend <backend>', 'compute backend (default: $MOE_TUNE_BACKEND, else auto)').choices([...BACKEND_CHOICES]))
    .option('--threads <n>', 'threads for the native backend (sets MOE_TUNE_THREADS)', intArg(1))
    .option('--debug', 'print stack traces on errors')
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({
      outputError: (str, write) => write(`moe-tune: ${str.replace(/^error: /, '').trimEnd().replace(/\s*\n\s*/g, ' ')}\n`),
    })
    .addHelpText('after', examples([
      ['moe-tune demo', 'the whole pipeline on the built-in Brown corpus (about 100 s of CPU time)'],
      ['moe-tune train --recipe adamoe-mixtral-qlora --tiny --out runs/adamoe', 'a paper recipe\'s tiny variant (recipes/README.md)'],
      ['moe-tune info --model ./tiny-mixtral', 'what a checkpoint is (no weights read)'],
      ['moe-tune eval --model ./tiny-mixtral --data ids.jsonl --json', 'perplexity and router statistics'],
      ['moe-tune sweep --model ./tiny-mixtral --data ids.jsonl --router top-k:k=1..4', 'quality vs activated experts'],
      ['moe-tune <command> --help', 'options and examples of one command'],
    ]));
  program.hook('preAction', (_program, action) => {
    const g = action.optsWithGlobals() as GlobalOptions;
    if (g.threads !== undefined) process.env['MOE_TUNE_THREADS'] = String(g.threads);
    if (g.backend !== undefined) setBackend(g.backend);
  });
  for (const c of COMMANDS) c.register(program);
  return program;
}

/** Runs the CLI on argv (node, script, ...args) and returns the exit code. */
export async function run(argv: readonly string[] = process.argv): Promise<number> {
  const debug = argv.includes('--debug');
  const program = buildProgram();
  try {
    await program.parseAsync([...argv]);
    const interrupted = interruptExitCode();
    if (interrupted !== null) {
      process.stderr.write(`moe-tune: warning: stopped by ${interruptSignal()} after writing a checkpoint; exit status ${interrupted}\n`);
      return interrupted;
    }
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode; // commander printed its message (or the help)
    process.stderr.write(`moe-tune: ${errorText(err)}\n`);
    if (debug && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
    return 1;
  }
}

/** Entry point for bin/moe-tune.js and `node --import tsx src/cli/main.ts`. */
export async function main(): Promise<void> {
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
  process.exitCode = await run(process.argv);
}

const invokedPath = process.argv[1] ? path.resolve(process.argv[1]) : '';
if (invokedPath === fileURLToPath(import.meta.url)) void main();
