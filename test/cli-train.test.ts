/**
 * `moe-tune pretrain` / `train` through the CLI: Ctrl-C (SIGINT) writes a checkpoint and --resume
 * continues it to the same losses and weights as an uninterrupted run; a used run directory needs
 * --resume; bad input (missing model directory, bad recipe key, corrupt data line, unknown router,
 * unknown pass, missing file) is ONE error line, a non-zero exit, and no run directory left behind.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { SafetensorsFile } from '../src/io/index.js';
import { CLI_MAIN, expectOneErrorLine, runCli, runInterrupted } from './helpers/cli.js';
import { FIXTURES } from './helpers/fixtures.js';
import { makeTmpDir } from './helpers/tmpdir.js';

const root = path.resolve(path.dirname(CLI_MAIN), '../..');

interface Row { step: number; loss: number; lm_loss: number }

function metrics(runDir: string): Row[] {
  return fs.readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Row);
}

function weights(modelDir: string): Map<string, Float32Array> {
  const f = SafetensorsFile.open(path.join(modelDir, 'model.safetensors'));
  try {
    return new Map(f.names().map((n) => [n, f.readFloat32(n)]));
  } finally {
    f.close();
  }
}

describe('Ctrl-C and --resume', () => {
  it('pretrain: SIGINT writes a checkpoint; --resume ends with the same losses and weights as one uninterrupted run', async () => {
    const dir = makeTmpDir('cli-resume');
    const common = ['--recipe', 'tcmoe-a2-2e-5', '--tiny', '--steps', '80', '--set', 'eval.max_batches=1'];
    const full = path.join(dir, 'full');
    const ref = runCli(['pretrain', ...common, '--out', full]);
    expect(ref.code, ref.stderr).toBe(0);

    const cut = path.join(dir, 'cut');
    const first = await runInterrupted(['pretrain', ...common, '--out', cut], /step 10\/80/);
    expect(first.signalled).toBe(true);
    expect(first.code).toBe(130); // interrupted: the shell status of SIGINT, after the checkpoint
    expect(first.stderr).toMatch(/SIGINT: stopping after this step and writing a checkpoint/);
    expect(first.stdout).toMatch(/stopped at step (\d+) of 80 with a checkpoint in .*cut\/checkpoints; continue with --resume/);
    const stoppedAt = Number(/stopped at step (\d+)/.exec(first.stdout)![1]);
    expect(stoppedAt).toBeGreaterThanOrEqual(10);
    expect(stoppedAt).toBeLessThan(80);
    expect(metrics(cut)).toHaveLength(stoppedAt);

    // a used run directory is refused without --resume
    expect(expectOneErrorLine(runCli(['pretrain', ...common, '--out', cut]))).toMatch(/cut: run directory exists and is not empty \(pass --resume to continue it/);

    const second = runCli(['pretrain', ...common, '--out', cut, '--resume']);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toContain(`resumed from step ${stoppedAt}`);
    const a = metrics(full);
    const b = metrics(cut);
    expect(b.map((m) => m.step)).toEqual(a.map((m) => m.step));
    for (let i = 0; i < a.length; i++) expect(Math.abs(b[i]!.loss - a[i]!.loss), `step ${i + 1}`).toBeLessThan(1e-6);
    const wa = weights(path.join(full, 'model'));
    const wb = weights(path.join(cut, 'model'));
    expect([...wb.keys()]).toEqual([...wa.keys()]);
    for (const [n, t] of wa) expect(Buffer.from(wb.get(n)!.buffer).equals(Buffer.from(t.buffer)), n).toBe(true);
  });

  it('train: SIGINT then --resume matches an uninterrupted AdaMoE QLoRA run', async () => {
    const dir = makeTmpDir('cli-resume-ft');
    const common = ['--recipe', 'adamoe-mixtral-qlora', '--tiny', '--steps', '80', '--set', 'eval.max_batches=1', '--set', 'data.samples=80'];
    const full = path.join(dir, 'full');
    expect(runCli(['train', ...common, '--out', full]).code).toBe(0);
    const cut = path.join(dir, 'cut');
    const first = await runInterrupted(['train', ...common, '--out', cut], /step 10\/80/);
    expect(first.signalled).toBe(true);
    expect(first.code).toBe(130); // interrupted: the shell status of SIGINT, after the checkpoint
    expect(first.stdout).toMatch(/stopped at step \d+ with a checkpoint/);
    const second = runCli(['train', ...common, '--out', cut, '--resume']);
    expect(second.code, second.stderr).toBe(0);
    const a = metrics(full);
    const b = metrics(cut);
    expect(b).toHaveLength(80);
    for (let i = 0; i < a.length; i++) expect(Math.abs(b[i]!.loss - a[i]!.loss), `step ${i + 1}`).toBeLessThan(1e-6);
    const ea = JSON.parse(fs.readFileSync(path.join(full, 'eval.json'), 'utf8')) as { after: { loss: number } };
    const eb = JSON.parse(fs.readFileSync(path.join(cut, 'eval.json'), 'utf8')) as { after: { loss: number } };
    expect(Math.abs(eb.after.loss - ea.after.loss)).toBeLessThan(1e-6);
  });
});

describe('bad input: one error line, a non-zero exit, nothing half-written', () => {
  const dir = makeTmpDir('cli-bad');
  const out = path.join(dir, 'run');
  const fail = (args: string[], pattern: RegExp): void => {
    const line = expectOneErrorLine(runCli(args));
    expect(line).toMatch(pattern);
    expect(fs.existsSync(out), `${args.join(' ')} left ${out}`).toBe(false);
  };

  it('missing model directory', () => {
    fail(['train', '--recipe', 'adamoe-mixtral-qlora', '--tiny', '--model', path.join(dir, 'nope'), '--out', out], /nope: model directory not found$/);
    fail(['surgery', '--model', path.join(dir, 'nope'), '--pass', 'null-experts:m=4,top_k=3', '--out', out], /nope: model directory not found$/);
    fail(['convert', 'decompose', '--model', path.join(dir, 'nope'), '--experts', '2', '--out', out], /nope: model directory not found$/);
  });

  it('bad recipe key, bad --set, unknown recipe', () => {
    const bad = path.join(dir, 'bad.yaml');
    fs.writeFileSync(bad, fs.readFileSync(path.join(root, 'recipes', 'tcmoe-a2-0.yaml'), 'utf8').replace('  seq_len: 2048', '  seq_len: 2048\n  seqlen: 4'));
    fail(['pretrain', '--recipe', bad, '--out', out], /bad\.yaml: train\.seqlen: unknown key \(valid keys here: lr, /);
    fail(['pretrain', '--recipe', 'tcmoe-a2-0', '--tiny', '--set', 'train.lr=fast', '--out', out], /--set train\.lr: expected a number, got 'fast'$/);
    fail(['pretrain', '--recipe', 'tcmoe-a2-0', '--tiny', '--set', 'train.learning_rate=1', '--out', out], /--set train\.learning_rate: unknown key 'learning_rate' in train/);
    fail(['pretrain', '--recipe', 'tcmoe-a2', '--out', out], /recipe 'tcmoe-a2': no such file/);
    fail(['train', '--recipe', 'tcmoe-a2-0', '--tiny', '--out', out], /tcmoe-a2-0\.yaml: a pretrain recipe; run it with moe-tune pretrain$/);
  });

  it('corrupt data line (and a missing data file)', () => {
    const data = path.join(dir, 'data.jsonl');
    fs.writeFileSync(data, '{"text": "one fine line of text"}\n{"text": "another"\n{"text": "a third"}\n');
    fail(['train', '--recipe', 'adamoe-mixtral-qlora', '--tiny', '--data', data, '--out', out], /data\.jsonl:2: /);
    fail(['train', '--recipe', 'adamoe-mixtral-qlora', '--tiny', '--data', path.join(dir, 'none.jsonl'), '--out', out], /none\.jsonl: data file not found$/);
  });

  it('unknown router, unknown pass', () => {
    fail(['pretrain', '--recipe', 'topp-dynamic', '--tiny', '--set', 'router=top-z:p=0.4', '--out', out], /--set router=top-z:p=0\.4: unknown router 'top-z' \(valid: /);
    fail(['train', '--recipe', 'adamoe-mixtral-qlora', '--tiny', '--set', 'surgery=["null-experts:m=4,top_k=3", "add-nulls:m=4"]', '--out', out], /--set surgery=.*: surgery\.1: unknown surgery pass 'add-nulls'/);
    fail(['surgery', '--model', path.join(FIXTURES, 'tiny-mixtral'), '--pass', 'nul-experts:m=4', '--out', out], /--pass 'nul-experts:m=4': unknown surgery pass 'nul-experts' \(valid: null-experts, /);
    fail(['surgery', '--model', path.join(FIXTURES, 'tiny-mixtral'), '--pass', 'null-experts:m=4,top_k=99', '--out', out], /surgery pass 'null-experts:m=4,top_k=99': top_k 99 is more than the 4 experts \+ 4 null experts$/);
  });
});
