/**
 * `moe-tune hub pull REPO ...` and `moe-tune hub push DIR REPO ...`: the Hugging Face Hub. Pulls go
 * to the shared Hugging Face cache layout (HF_HOME / HF_HUB_CACHE honoured, so Python tools share
 * it); pushes create the repo when needed and write a model card with the run's recipe, metrics
 * and expert-load table. The token comes from HF_TOKEN or the usual token file and is never
 * printed; errors are one line with the token redacted.
 */
import type { Command } from 'commander';
import { hubPull, hubPush, type RetryEvent } from '../../hub/index.js';
import { examples, type CliCommand } from '../command.js';
import { renderCardFor } from '../hub-card.js';
import { collect } from '../options.js';
import { note, printJson, thousands } from '../output.js';

interface PullOptions {
  revision?: string;
  include?: string[];
  exclude?: string[];
  endpoint?: string;
  cacheDir?: string;
  verify?: boolean;
  json?: boolean;
}

interface PushOptions {
  private?: boolean;
  endpoint?: string;
  message?: string;
  branch?: string;
  card?: boolean;
  json?: boolean;
}

const retryNote = (e: RetryEvent): void => note(`moe-tune: warning: ${e.what}: ${e.reason}; retrying in ${(e.delayMs / 1000).toFixed(1)} s (try ${e.attempt + 1})`);

async function pullAction(repo: string, o: PullOptions): Promise<void> {
  const res = await hubPull(repo, {
    ...(o.revision ? { revision: o.revision } : {}),
    ...(o.include ? { include: o.include } : {}),
    ...(o.exclude ? { exclude: o.exclude } : {}),
    ...(o.endpoint ? { endpoint: o.endpoint } : {}),
    ...(o.cacheDir ? { cacheDir: o.cacheDir } : {}),
    ...(o.verify ? { verify: true } : {}),
    onRetry: retryNote,
    onWarning: (line) => note(`moe-tune: warning: ${line}`),
  });
  if (o.json) {
    printJson({ repo, revision: res.revision, commit: res.commit, snapshot_dir: res.snapshotDir, storage_dir: res.storageDir, files: res.files });
    return;
  }
  const bytes = res.files.reduce((a, f) => a + f.size, 0);
  const fetched = res.files.filter((f) => f.status !== 'cached').length;
  note(`${repo}@${res.commit.slice(0, 12)}: ${res.files.length} files, ${thousands(bytes)} bytes (${fetched} downloaded, ${res.files.length - fetched} cached)`);
  process.stdout.write(`${res.snapshotDir}\n`);
}

async function pushAction(dir: string, repo: string, o: PushOptions): Promise<void> {
  const card = o.card === false ? undefined : renderCardFor(dir, repo);
  const res = await hubPush(dir, repo, {
    ...(o.private !== undefined ? { private: o.private } : {}),
    ...(o.endpoint ? { endpoint: o.endpoint } : {}),
    ...(o.message ? { commitMessage: o.message } : {}),
    ...(o.branch ? { branch: o.branch } : {}),
    ...(card ? { modelCard: card.card } : {}),
    onRetry: retryNote,
  });
  if (o.json) {
    printJson({ repo: res.repo, url: res.url, created: res.created, commit: res.commit, commit_url: res.commitUrl, files: res.files, card_from: card?.runDir ?? null });
    return;
  }
  process.stdout.write(`${res.created ? 'created' : 'updated'} ${res.url}: ${res.files.length} files in commit ${res.commit.slice(0, 12)}${card ? ` (model card from ${card.runDir ?? dir})` : ''}\n`);
}

export const hubCommand: CliCommand = {
  name: 'hub',
  register(program: Command) {
    const hub = program.command('hub')
      .description('Hugging Face Hub: pull a repo into the shared cache, push a model or adapter with its model card')
      .addHelpText('after', examples([
        ['moe-tune hub pull mistralai/Mixtral-8x7B-v0.1 --include "*.json" --include "*.safetensors"', 'prints the snapshot directory'],
        ['moe-tune hub push runs/adamoe/final/adapter me/mixtral-adamoe-adapter --private', 'creates the repo, uploads, writes the card'],
      ]))
      .addHelpText('after', '\nToken: $HF_TOKEN, else the token file ($HF_HOME/token); never printed. Endpoint: --endpoint, else $HF_ENDPOINT.\nHF_HUB_OFFLINE=1: no requests (pull prints the cached snapshot). HF_HUB_DOWNLOAD_TIMEOUT: connect / idle timeout in seconds (default 10). HF_HUB_MAX_RETRY_AFTER: the longest Retry-After waited out (default 120 s).\n');
    hub.command('pull')
      .description('download a repo revision (or the files matching --include) into the Hugging Face cache and print its snapshot directory')
      .argument('<repo>', 'org/name (datasets/org/name for a dataset)')
      .option('--revision <rev>', 'branch, tag or commit (default main)')
      .option('--include <glob>', 'only files matching (repeatable; fnmatch as huggingface_hub: "*" also matches "/", a trailing "/" selects a directory)', collect)
      .option('--exclude <glob>', 'not files matching (repeatable; same syntax)', collect)
      .option('--endpoint <url>', 'Hub endpoint (default: $HF_ENDPOINT, else https://huggingface.co)')
      .option('--cache-dir <dir>', 'Hub cache (default: $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub)')
      .option('--verify', 'hash the files already in the cache before using them; a corrupt one is downloaded again')
      .option('--json', 'print {snapshot_dir, commit, files, ...} as JSON')
      .addHelpText('after', examples([
        ['moe-tune hub pull mistralai/Mixtral-8x7B-v0.1', 'the whole repo at main'],
        ['moe-tune hub pull me/tiny-moe --revision v1 --include "*.json" --json', 'configs only, as JSON'],
      ]))
      .action((repo: string, o: PullOptions) => pullAction(repo, o));
    hub.command('push')
      .description('upload a model or adapter directory to a repo in one commit (the repo is created if needed) with a model card: recipe, metrics, expert-load table')
      .argument('<dir>', 'model or adapter directory (e.g. RUN_DIR/final/model, RUN_DIR/final/adapter, RUN_DIR/model)')
      .argument('<repo>', 'org/name (or name: your user namespace)')
      .option('--private', 'create the repo private')
      .option('--endpoint <url>', 'Hub endpoint (default: $HF_ENDPOINT, else https://huggingface.co)')
      .option('--message <text>', 'commit message')
      .option('--branch <name>', 'branch to commit to (default main)')
      .option('--no-card', 'do not write a model card (README.md)')
      .option('--json', 'print {repo, url, commit, files, ...} as JSON')
      .addHelpText('after', examples([
        ['moe-tune hub push runs/tcmoe/model me/tcmoe-tiny', 'a pretrained model with its run\'s recipe and metrics'],
        ['moe-tune hub push runs/ada/final/adapter me/ada-adapter --private --message "AdaMoE adapter"', 'a PEFT adapter'],
      ]))
      .action((dir: string, repo: string, o: PushOptions) => pushAction(dir, repo, o));
  },
};
