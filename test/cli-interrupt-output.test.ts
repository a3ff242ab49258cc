/**
 * Issue 18, item 5: Ctrl-C writes a checkpoint, not a final model. Before the change an interrupted
 * `train` wrote final/model (and final/adapter) and an interrupted `pretrain` wrote model/, each
 * indistinguishable from a finished run. Now neither is written, summary.json says
 * `interrupted: true` with the checkpoint, and the screen says "interrupted". (The exit status of
 * an interrupted run is item 21's, not checked here.)
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runInterrupted } from './helpers/cli.js';
import { makeTmpDir } from './helpers/tmpdir.js';

describe('Ctrl-C leaves a checkpoint, not a final model', () => {
  it('train: no final/, summary.json and the screen say interrupted', async () => {
    const out = path.join(makeTmpDir('int-train'), 'run');
    const r = await runInterrupted(['train', '--recipe', 'adamoe-mixtral-qlora', '--tiny', '--steps', '200', '--set', 'eval.max_batches=1', '--set', 'data.samples=80', '--out', out], /step \d+\/200/);
    expect(r.signalled).toBe(true);
    expect(r.stdout).toMatch(/interrupted: stopped at step \d+ with a checkpoint in .*run\/checkpoints; no final model written; continue with --resume/);
    expect(r.stdout).toContain('model: not written (interrupted)');
    expect(fs.existsSync(path.join(out, 'final'))).toBe(false);
    const summary = JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8')) as { interrupted: boolean; steps: number; checkpoint: string };
    expect(summary.interrupted).toBe(true);
    expect(summary.steps).toBeLessThan(200);
    expect(fs.existsSync(path.join(summary.checkpoint, 'trainer-state.json')) || fs.readdirSync(summary.checkpoint).length > 0).toBe(true);
  });

  it('pretrain: no model/, summary.json marks it interrupted', async () => {
    const out = path.join(makeTmpDir('int-pre'), 'run');
    const r = await runInterrupted(['pretrain', '--recipe', 'tcmoe-a2-2e-5', '--tiny', '--steps', '200', '--set', 'eval.max_batches=1', '--out', out], /step \d+\/200/);
    expect(r.signalled).toBe(true);
    expect(r.stdout).toMatch(/interrupted: stopped at step \d+ of 200 with a checkpoint/);
    expect(r.stdout).toContain('model: not written (interrupted)');
    expect(fs.existsSync(path.join(out, 'model'))).toBe(false);
    const summary = JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8')) as { interrupted: boolean; metrics: { interrupted: boolean; steps: number } };
    expect(summary.interrupted).toBe(true);
    expect(summary.metrics.interrupted).toBe(true);
    expect(summary.metrics.steps).toBeLessThan(200);
  });
});
