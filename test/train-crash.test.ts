/**
 * Crashes and Ctrl-C, in real child processes: a run SIGKILLed in the middle of writing a checkpoint
 * resumes from the previous one with nothing corrupt and ends exactly where an uninterrupted run
 * ends; SIGINT writes a checkpoint at the end of the current step and exits cleanly.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { listCheckpoints, readTrainCheckpoint } from '../src/train/checkpoint.js';
import { readMetrics } from '../src/train/metrics.js';
import { makeTinyTrainer, snapshot } from './helpers/train-setup.js';
import { makeTmpDir } from './helpers/tmpdir.js';

const child = path.join(path.dirname(fileURLToPath(import.meta.url)), 'helpers', 'train-child.ts');

function startChild(args: Record<string, unknown>): { proc: ReturnType<typeof spawn>; done: Promise<{ code: number | null; signal: string | null; out: string; err: string }> } {
  const proc = spawn(process.execPath, ['--import', 'tsx', child, JSON.stringify(args)], {
    env: { ...process.env }, // same backend as this process, so the resumed steps match bit for bit
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d) => { out += String(d); });
  proc.stderr!.on('data', (d) => { err += String(d); });
  const done = new Promise<{ code: number | null; signal: string | null; out: string; err: string }>((resolve) => {
    proc.on('exit', (code, signal) => resolve({ code, signal, out, err }));
  });
  return { proc, done };
}

async function waitForFile(file: string, ms = 60_000): Promise<void> {
  const until = Date.now() + ms;
  while (!fs.existsSync(file)) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${file}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('a run killed mid-checkpoint', () => {
  it('SIGKILL while writing step 4: resumes from step 2, nothing corrupt, same end state as an uninterrupted run', async () => {
    const runDir = makeTmpDir('kill');
    const { proc, done } = startChild({ runDir, steps: 8, checkpointEvery: 2, mode: 'kill', at: 4 });
    await waitForFile(path.join(runDir, 'marker'));
    proc.kill('SIGKILL');
    const res = await done;
    expect(res.signal).toBe('SIGKILL');

    const ckDir = path.join(runDir, 'checkpoints');
    const entries = fs.readdirSync(ckDir);
    expect(entries).toContain('step-000002');
    expect(entries).not.toContain('step-000004');
    const stale = entries.filter((e) => e.startsWith('.step-000004.tmp-'));
    expect(stale).toHaveLength(1);
    // the half-written checkpoint really is half written: parameters yes, optimizer no
    expect(fs.readdirSync(path.join(ckDir, stale[0]!))).toEqual(['params.safetensors']);
    // the previous checkpoint is intact
    const prev = readTrainCheckpoint(path.join(ckDir, 'step-000002'));
    expect(prev.state.step).toBe(2);

    const resumed = makeTinyTrainer({ runDir, steps: 8, checkpointEvery: 2 });
    expect(resumed.trainer.resume()).toBe(2);
    expect(fs.readdirSync(ckDir).filter((e) => e.startsWith('.'))).toEqual([]);
    await resumed.trainer.run();
    expect(listCheckpoints(runDir).map((c) => c.step)).toEqual([4, 6, 8]);
    const ms = readMetrics(path.join(runDir, 'metrics.jsonl'));
    expect(ms.map((m) => m.step)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);

    const straight = makeTinyTrainer({ runDir: makeTmpDir('kill-ref'), steps: 8, checkpointEvery: 2 });
    await straight.trainer.run();
    const ref = readMetrics(path.join(straight.trainer.runDir, 'metrics.jsonl'));
    for (let i = 0; i < 8; i++) expect(Math.abs(ms[i]!.loss - ref[i]!.loss)).toBeLessThan(1e-6);
    expect(snapshot(resumed.model)).toEqual(snapshot(straight.model));
  });
});

describe('Ctrl-C', () => {
  it('SIGINT after step 3 writes a checkpoint for step 3 and exits with status 0', async () => {
    const runDir = makeTmpDir('sigint');
    const { proc, done } = startChild({ runDir, steps: 50, checkpointEvery: 0, mode: 'sigint', at: 3 });
    await waitForFile(path.join(runDir, 'marker'));
    proc.kill('SIGINT');
    fs.writeFileSync(path.join(runDir, 'sent'), '1');
    const res = await done;
    // nothing on stderr but, when the addon is not built, the js backend's one warning line
    expect(res.err.split('\n').filter((l) => l !== '' && !/warning: native backend unavailable/.test(l))).toEqual([]);
    expect(res.code).toBe(0);
    const out = JSON.parse(res.out.trim()) as { step: number; stopped: boolean; checkpoint: string };
    expect(out).toMatchObject({ step: 3, stopped: true });
    expect(path.basename(out.checkpoint)).toBe('step-000003');
    expect(listCheckpoints(runDir).map((c) => c.step)).toEqual([3]);
    expect(readMetrics(path.join(runDir, 'metrics.jsonl')).map((m) => m.step)).toEqual([1, 2, 3]);
  });
});
