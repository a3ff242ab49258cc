#!/usr/bin/env node
/**
 * Every family through the CLI against transformers itself, at a seed and shape of your choice:
 *
 *   node scripts/families-vs-transformers.mjs [--seed 99] [--batch 3] [--seq 20] [--families a,b] [--keep DIR]
 *
 * test/python/make_references.py (the venv's python: MOE_TUNE_PYTHON or .venv-py/bin/python) saves tiny random
 * checkpoints with transformers (f32 and bf16) and its own NLL on random ids; then for each checkpoint
 * `moe-tune eval --json` on the same ids and `moe-tune info --json`. Prints one table row per checkpoint
 * (NLL both sides, relative error, layers, MoE layers, experts routed + shared, parameters total / active) and
 * exits 1 when a relative error reaches 1e-5. Needs `npm run build` (bin/moe-tune.js runs dist/).
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const python = process.env.MOE_TUNE_PYTHON ?? path.join(root, '.venv-py', 'bin', 'python');
if (!fs.existsSync(python)) {
  console.error(`no ${python}: run ../shared/py-venv.sh .venv-py (or set MOE_TUNE_PYTHON)`);
  process.exit(2);
}
const dir = opt('keep') ?? fs.mkdtempSync(path.join(os.tmpdir(), 'families-'));
const pyArgs = [path.join(root, 'test', 'python', 'make_references.py'), dir, '--seed', opt('seed', '99'), '--batch', opt('batch', '3'), '--seq', opt('seq', '20')];
if (opt('families')) pyArgs.push('--families', opt('families'));
const made = JSON.parse(execFileSync(python, pyArgs, { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: '1' }, stdio: ['ignore', 'pipe', 'ignore'] }).trim().split('\n').pop());

const cli = (...a) => JSON.parse(execFileSync(process.execPath, [path.join(root, 'bin', 'moe-tune.js'), ...a], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }));
const rows = [];
const errors = [];
let worst = 0;
for (const name of made.families) {
  const ref = JSON.parse(fs.readFileSync(path.join(dir, `${name}.ref.json`), 'utf8'));
  const data = path.join(dir, `${name}.ids.jsonl`);
  fs.writeFileSync(data, ref.ids.map((ids) => JSON.stringify({ input_ids: ids })).join('\n') + '\n');
  const model = path.join(dir, name);
  let ev;
  let info;
  try {
    ev = cli('eval', '--model', model, '--data', data, '--json');
    info = cli('info', '--model', model, '--json');
  } catch (e) {
    rows.push([name, ref.architecture, ref.nll.toFixed(6), 'error (below)']);
    errors.push(`${name}: ${String(e.stderr ?? e.message).trim().split('\n').pop()}`);
    worst = Infinity;
    continue;
  }
  const rel = Math.abs(ev.nll - ref.nll) / ref.nll;
  worst = Math.max(worst, rel);
  const x = info.experts;
  const moeLayers = x?.moe_layers?.length ?? (x ? info.layers : 0);
  rows.push([
    name, ref.architecture, ref.nll.toFixed(6), ev.nll.toFixed(6), rel.toExponential(1), String(info.layers), String(moeLayers),
    x ? `${x.count} + ${x.shared_experts ?? 0}` : '-', String(info.parameters.total), String(info.parameters.active_per_token),
  ]);
}
const head = ['checkpoint', 'architecture', 'transformers NLL', 'moe-tune NLL', 'rel err', 'layers', 'MoE layers', 'experts routed + shared', 'params total', 'active / token'];
const all = [head, ...rows];
const w = head.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
for (const r of all) console.log(r.map((c, i) => (c ?? '').padEnd(w[i])).join('  '));
for (const e of errors) console.log(e);
console.log(`seed ${opt('seed', '99')}, ${opt('batch', '3')} x ${opt('seq', '20')} ids; worst relative error ${worst.toExponential(2)}${opt('keep') ? `; checkpoints in ${dir}` : ''}`);
if (!opt('keep')) fs.rmSync(dir, { recursive: true, force: true });
process.exit(worst < 1e-5 ? 0 : 1);
