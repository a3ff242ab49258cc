/**
 * Resume reads what a checkpoint says only after checking it (issue 18, items 11 and 12): a trainer-state.json
 * with a bad or missing field is one error naming the file and the field (never a TypeError, never a negative step
 * accepted); a `step-*` directory that lacks one of its files is skipped with a warning and the previous complete
 * checkpoint is resumed.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeTinyTrainer } from './helpers/train-setup.js';
import { makeTmpDir } from './helpers/tmpdir.js';

async function runWithCheckpoints(steps: number, every: number): Promise<string> {
  const runDir = makeTmpDir('resume-validate');
  const { trainer } = makeTinyTrainer({ runDir, steps, checkpointEvery: every });
  await trainer.run();
  return runDir;
}

function editState(runDir: string, step: number, edit: (s: Record<string, unknown>) => void): string {
  const file = path.join(runDir, 'checkpoints', `step-${String(step).padStart(6, '0')}`, 'trainer-state.json');
  const s = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  edit(s);
  fs.writeFileSync(file, JSON.stringify(s));
  return file;
}

function resumeError(runDir: string): Error {
  const { trainer } = makeTinyTrainer({ runDir, steps: 4, checkpointEvery: 2 });
  try {
    trainer.resume();
  } catch (err) {
    return err as Error;
  }
  throw new Error('resume accepted a bad trainer state');
}

describe('trainer-state.json is validated on resume (item 11)', () => {
  const cases: [string, (s: Record<string, unknown>) => void, RegExp][] = [
    ['step "abc"', (s) => { s['step'] = 'abc'; }, /field 'step': .*got "abc"/],
    ['negative step', (s) => { s['step'] = -3; }, /field 'step': .*got -3/],
    ['fractional step', (s) => { s['step'] = 1.5; }, /field 'step': .*got 1\.5/],
    ['no trainable', (s) => { delete s['trainable']; }, /field 'trainable': .*missing/],
    ['no optimizer', (s) => { delete s['optimizer']; }, /field 'optimizer': .*missing/],
    ['optimizer.steps not counts', (s) => { s['optimizer'] = { step: 2, steps: { x: 'y' } }; }, /field 'optimizer\.steps\.x'/],
    ['no data', (s) => { delete s['data']; }, /field 'data': .*missing/],
    ['data of the wrong shape', (s) => { s['data'] = { epoch: 0, index: -1, seed: 7 }; }, /field 'data': .*index/],
    ['rng state not four words', (s) => { s['rng'] = { forward: { s: [1, 2], spare: null } }; }, /field 'rng\.forward\.s'/],
    ['lr not a number', (s) => { s['lr'] = 'fast'; }, /field 'lr'/],
  ];
  it.each(cases)('%s: one error naming trainer-state.json and the field', async (_name, edit, pattern) => {
    const runDir = await runWithCheckpoints(2, 2);
    const file = editState(runDir, 2, edit);
    const err = resumeError(runDir);
    expect(err).not.toBeInstanceOf(TypeError);
    expect(err.message.startsWith(`${file}: `), err.message).toBe(true);
    expect(err.message).toMatch(pattern);
    expect(err.message).not.toMatch(/\n/);
  });
});

describe('an incomplete checkpoint directory is skipped with a warning (item 12)', () => {
  it.each(['optimizer.safetensors', 'params.safetensors', 'trainer-state.json'])('step-4 without %s: resumes step 2 and says why', async (missing) => {
    const runDir = await runWithCheckpoints(4, 2);
    fs.rmSync(path.join(runDir, 'checkpoints', 'step-000004', missing));
    const warnings: string[] = [];
    const { trainer } = makeTinyTrainer({ runDir, steps: 4, checkpointEvery: 2, onWarning: (l) => warnings.push(l) });
    expect(trainer.resume()).toBe(2);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('step-000004');
    expect(warnings[0]).toContain(missing);
    expect(warnings[0]).toMatch(/resuming from step 2/);
    const res = await trainer.run();
    expect(res.step).toBe(4);
    // the rewritten step-4 checkpoint is complete
    expect(fs.readdirSync(path.join(runDir, 'checkpoints', 'step-000004')).sort()).toEqual(['optimizer.safetensors', 'params.safetensors', 'trainer-state.json']);
  });
});

describe('a pruning killed midway leaves no damaged checkpoint (item 12, found by the kill re-run)', () => {
  it('an older step-* left half-deleted is removed on resume, silently; no step-* is ever incomplete after the run', async () => {
    const runDir = await runWithCheckpoints(6, 2); // keeps step-2, -4, -6
    // what a SIGKILL during the removal of step-2 left before the fix: the directory with some of its files
    fs.rmSync(path.join(runDir, 'checkpoints', 'step-000002', 'params.safetensors'));
    fs.rmSync(path.join(runDir, 'checkpoints', 'step-000002', 'optimizer.safetensors'));
    const warnings: string[] = [];
    const { trainer } = makeTinyTrainer({ runDir, steps: 10, checkpointEvery: 2, keep: 2, onWarning: (l) => warnings.push(l) });
    expect(trainer.resume()).toBe(6);
    expect(warnings).toEqual([]);
    expect(fs.existsSync(path.join(runDir, 'checkpoints', 'step-000002'))).toBe(false);
    await trainer.run();
    expect(fs.readdirSync(path.join(runDir, 'checkpoints')).sort()).toEqual(['step-000008', 'step-000010']);
  });
});
