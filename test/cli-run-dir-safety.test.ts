/**
 * The run directory of `pretrain` / `train` under faults (issue 18: items 9, 10, 17, 18, 21), through the CLI in
 * child processes on the tiny TC-MoE recipe (a couple of seconds per run):
 * - sizes that cannot be allocated are refused before allocating, naming the field, with no run directory left;
 * - a pre-existing empty --out directory survives a failed command;
 * - a second process on a live run directory (fresh start or --resume) gets one line naming the holder;
 * - --resume refuses a recipe change that breaks exactness unless --allow-recipe-change, which records both;
 * - SIGINT / SIGTERM exit 130 / 143 after the checkpoint; ENOSPC names the path; failure cleanup never hides the
 *   error; leftovers of a killed final save are gone after a successful --resume.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { prepareRunDir } from '../src/cli/run-dir.js';
import { CLI_MAIN, expectOneErrorLine, runCli } from './helpers/cli.js';
import { makeTmpDir } from './helpers/tmpdir.js';

const root = path.resolve(path.dirname(CLI_MAIN), '../..');
const RECIPE = ['--recipe', 'tcmoe-a2-2e-5', '--tiny', '--set', 'eval.max_batches=1'];

function pretrain(out: string, ...more: string[]): ReturnType<typeof runCli> {
  return runCli(['pretrain', ...RECIPE, '--steps', '2', '--out', out, ...more], { timeoutMs: 60_000 });
}

/** A long pretraining run in the background; resolves `started` once it prints its first step line. */
function background(out: string): { child: ReturnType<typeof spawn>; started: Promise<void>; done: Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }> } {
  const child = spawn(process.execPath, ['--import', 'tsx', CLI_MAIN, 'pretrain', ...RECIPE, '--steps', '100000', '--set', 'train.checkpoint_every=0', '--out', out], {
    cwd: root, env: { ...process.env, MOE_TUNE_BACKEND: 'js' },
  });
  let stdout = '';
  let stderr = '';
  let resolveStarted: () => void = () => {};
  const started = new Promise<void>((resolve) => { resolveStarted = resolve; });
  child.stdout!.on('data', (d: Buffer) => {
    stdout += d.toString();
    if (/step \d+\/100000/.test(stdout)) resolveStarted();
  });
  child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  const done = new Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }>((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
  void done.then(() => clearTimeout(timer));
  return { child, started, done };
}

describe('sizes that cannot be allocated (item 9)', () => {
  it.each([
    ['model.config.num_local_experts=1000000', /field 'num_local_experts' = 1000000: .*GiB.*memory/],
    ['model.config.hidden_size=1000000000000', /field 'hidden_size' = 1000000000000: .*typed array/],
    ['model.config.num_hidden_layers=10000000', /field 'num_hidden_layers' = 10000000/],
  ])('--set %s: one line naming the field, within seconds, no run directory left', (set, pattern) => {
    const out = path.join(makeTmpDir('alloc'), 'run');
    const t0 = Date.now();
    const r = runCli(['pretrain', ...RECIPE, '--steps', '2', '--set', set, '--out', out], { timeoutMs: 60_000 });
    expect(expectOneErrorLine(r)).toMatch(pattern);
    expect(Date.now() - t0).toBeLessThan(30_000);
    expect(fs.existsSync(out)).toBe(false);
  });
});

describe('a directory the user made is never deleted (item 10)', () => {
  it('an empty --out that existed before survives a failing pretrain and a failing train, and stays empty', () => {
    const out = path.join(makeTmpDir('user-out'), 'mine');
    fs.mkdirSync(out);
    expectOneErrorLine(runCli(['pretrain', ...RECIPE, '--steps', '2', '--set', 'model.config.num_local_experts=1000000', '--out', out], { timeoutMs: 60_000 }));
    expect(fs.existsSync(out)).toBe(true);
    expect(fs.readdirSync(out)).toEqual([]);
    expectOneErrorLine(runCli(['train', '--recipe', 'adamoe-mixtral-qlora', '--tiny', '--data', path.join(out, 'missing.jsonl'), '--out', out], { timeoutMs: 60_000 }));
    expect(fs.existsSync(out)).toBe(true);
    expect(fs.readdirSync(out)).toEqual([]);
  });
});

describe('one process per run directory (item 17) and exit codes of interrupted runs (item 21)', () => {
  it('a second fresh start and a --resume on a live run each get one line naming the holder; SIGTERM exits 143 after its checkpoint', async () => {
    const out = path.join(makeTmpDir('lock'), 'run');
    const a = background(out);
    await a.started;
    const fresh = expectOneErrorLine(pretrain(out));
    expect(fresh).toMatch(new RegExp(`${out}: run directory: in use by moe-tune pretrain \\(pid ${a.child.pid}`));
    const resumed = expectOneErrorLine(pretrain(out, '--resume'));
    expect(resumed).toMatch(new RegExp(`in use by moe-tune pretrain \\(pid ${a.child.pid}`));
    a.child.kill('SIGTERM');
    const res = await a.done;
    expect(res.code).toBe(143);
    expect(res.stdout).toMatch(/stopped at step (\d+) of 100000 with a checkpoint/);
    expect(res.stderr).toMatch(/stopped by SIGTERM after writing a checkpoint; exit status 143/);
    const steps = fs.readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { step: number }).step);
    expect(steps).toEqual(steps.map((_, i) => i + 1)); // no duplicate or interleaved lines
    const stoppedAt = Number(/stopped at step (\d+)/.exec(res.stdout)![1]);
    expect(fs.readdirSync(path.join(out, 'checkpoints'))).toEqual([`step-${String(stoppedAt).padStart(6, '0')}`]);
    expect(fs.existsSync(path.join(out, '.moe-tune.lock'))).toBe(false);
  });

  it('SIGINT exits 130 after its checkpoint', async () => {
    const out = path.join(makeTmpDir('sigint'), 'run');
    const a = background(out);
    await a.started;
    a.child.kill('SIGINT');
    const res = await a.done;
    expect(res.code).toBe(130);
    expect(res.stdout).toMatch(/stopped at step \d+ of 100000 with a checkpoint/);
  });

  it('a stale lock of a dead process does not block the run', () => {
    const out = path.join(makeTmpDir('stale-lock'), 'run');
    fs.mkdirSync(out);
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    fs.writeFileSync(path.join(out, '.moe-tune.lock'), JSON.stringify({ pid: Number(dead.stdout), host: require_hostname(), start: null, what: 'moe-tune pretrain', since: '' }));
    const r = pretrain(out);
    expect(r.code, r.stderr).toBe(0);
  });
});

function require_hostname(): string {
  return spawnSync(process.execPath, ['-e', 'process.stdout.write(require("os").hostname())'], { encoding: 'utf8' }).stdout;
}

describe('--resume checks the recipe (item 18)', () => {
  it('refuses a changed lr / seed / seq_len / batch / aux weight, naming each; --allow-recipe-change continues and records both', () => {
    const out = path.join(makeTmpDir('recipe-change'), 'run');
    expect(pretrain(out).code).toBe(0);
    const before = fs.readFileSync(path.join(out, 'recipe.yaml'), 'utf8');
    for (const [set, name] of [
      ['train.lr=0.01', 'train.lr'], ['seeds=[1]', 'seeds'], ['train.seq_len=16', 'train.seq_len'],
      ['train.batch_size=2', 'train.batch_size'], ['aux_losses.0.weight=0.5', 'aux_losses'],
    ] as const) {
      const line = expectOneErrorLine(pretrain(out, '--resume', '--set', set));
      expect(line).toContain(`${path.join(out, 'recipe.json')}: --resume with a changed recipe: ${name}`);
      expect(line).toMatch(/--allow-recipe-change/);
      expect(fs.readFileSync(path.join(out, 'recipe.yaml'), 'utf8')).toBe(before);
    }
    // an evaluation-only change is fine
    const neutral = pretrain(out, '--resume', '--set', 'eval.batch_size=4');
    expect(neutral.code, neutral.stderr).toBe(0);
    const allowed = pretrain(out, '--resume', '--set', 'train.lr=0.01', '--allow-recipe-change');
    expect(allowed.code, allowed.stderr).toBe(0);
    expect(allowed.stderr).toMatch(/warning: resuming with a changed recipe \(train\.lr\)/);
    const rec = fs.readFileSync(path.join(out, 'recipe-changes.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { changes: { path: string; before: unknown; after: unknown }[]; previous: { train: { lr: number } } });
    expect(rec).toHaveLength(1);
    expect(rec[0]!.changes).toContainEqual({ path: 'train.lr', before: 0.003, after: 0.01 });
    expect(rec[0]!.previous.train.lr).toBe(0.003);
    expect((JSON.parse(fs.readFileSync(path.join(out, 'recipe.json'), 'utf8')) as { train: { lr: number } }).train.lr).toBe(0.01);
  });
});

describe('OS errors and cleanup (item 21)', () => {
  it('a kill during the final save: its .model.tmp-* is gone after a successful --resume', () => {
    const out = path.join(makeTmpDir('final-save'), 'run');
    expect(pretrain(out).code).toBe(0);
    const leftover = path.join(out, '.model.tmp-Ab12Cd');
    fs.mkdirSync(leftover);
    fs.writeFileSync(path.join(leftover, 'model.safetensors'), 'half');
    const r = pretrain(out, '--resume');
    expect(r.code, r.stderr).toBe(0);
    expect(fs.readdirSync(out).filter((e) => e.includes('.tmp-'))).toEqual([]);
  });

  it('--out under a regular file: one line naming the path (ENOTDIR)', () => {
    const file = path.join(makeTmpDir('enotdir'), 'file');
    fs.writeFileSync(file, 'x');
    expect(expectOneErrorLine(pretrain(path.join(file, 'run')))).toContain(path.join(file, 'run'));
    expect(fs.readFileSync(file, 'utf8')).toBe('x');
  });

  const canMount = process.platform === 'linux' && process.getuid?.() === 0 && (() => {
    const d = makeTmpDir('mount-probe');
    const ok = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', d]).status === 0;
    if (ok) spawnSync('umount', [d]);
    return ok;
  })();

  it.skipIf(!canMount)('ENOSPC (a 256 KiB tmpfs): one line naming the file; the run directory is cleaned', () => {
    const mnt = makeTmpDir('enospc');
    expect(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', mnt]).status).toBe(0);
    try {
      const out = path.join(mnt, 'run');
      const line = expectOneErrorLine(pretrain(out));
      expect(line).toMatch(new RegExp(`moe-tune: ${out}/\\S+: .*ENOSPC \\(no space left on device\\)`));
      expect(fs.existsSync(out)).toBe(false);
    } finally {
      spawnSync('umount', [mnt]);
    }
  });

  it.skipIf(!canMount)('a cleanup that fails (EBUSY: a mount inside the run directory) is reported, never thrown over the error', () => {
    const parent = makeTmpDir('cleanup');
    const dir = path.join(parent, 'run');
    const guard = prepareRunDir(dir, false, 'test');
    const sub = path.join(dir, 'busy');
    fs.mkdirSync(sub);
    expect(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', sub]).status).toBe(0);
    try {
      let note: string | null = null;
      expect(() => { note = guard.failed(); }).not.toThrow();
      expect(note).toMatch(new RegExp(`could not remove what this run wrote to ${dir}: .*EBUSY`));
    } finally {
      spawnSync('umount', [sub]);
    }
  });
});
