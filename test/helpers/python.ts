/**
 * The Python tools moe-tune is checked against (../shared/python-interop.md): transformers' own forward, PEFT,
 * accelerate / torch.distributed. Two interpreters:
 * - `python5`: torch 2.13 + transformers 5.18 + peft 0.21 + accelerate (MOE_TUNE_PYTHON, else `.venv-py/bin/python`
 *   in the repository root, which `.ci/run` makes with ../shared/py-venv.sh);
 * - `python4`: the same with transformers 4.57 (MOE_TUNE_PYTHON_TF4, else `.venv-py457/bin/python`, made by
 *   scripts/py-venv-tf4.sh).
 * A test file that needs one calls `describe.skipIf(!py.available)` and prints `py.skipLine` once; the suite then
 * skips with one line saying how to enable it.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface PythonTool {
  /** Interpreter path. */
  python: string;
  available: boolean;
  /** transformers version when available. */
  transformers: string | null;
  /** One line for the test log when unavailable. */
  skipLine: string;
}

function probe(envVar: string, venv: string, label: string): PythonTool {
  const python = process.env[envVar] ?? path.join(repoRoot, venv, 'bin', 'python');
  const howTo = `set ${envVar} or run: ../shared/py-venv.sh .venv-py${venv === '.venv-py457' ? ' && scripts/py-venv-tf4.sh .venv-py .venv-py457' : ''}`;
  if (!fs.existsSync(python)) return { python, available: false, transformers: null, skipLine: `${label}: skipped (no ${python}; ${howTo})` };
  const r = spawnSync(python, ['-c', 'import torch, transformers, peft; print(transformers.__version__)'], { encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) return { python, available: false, transformers: null, skipLine: `${label}: skipped (${python} lacks torch / transformers / peft; ${howTo})` };
  return { python, available: true, transformers: r.stdout.trim(), skipLine: '' };
}

let cache5: PythonTool | undefined;
let cache4: PythonTool | undefined;
/** torch + transformers 5.x + peft (+ accelerate). */
export function python5(label = 'python interop'): PythonTool {
  cache5 ??= probe('MOE_TUNE_PYTHON', '.venv-py', label);
  return cache5;
}
/** torch + transformers 4.57 + peft. */
export function python4(label = 'python interop (transformers 4)'): PythonTool {
  cache4 ??= probe('MOE_TUNE_PYTHON_TF4', '.venv-py457', label);
  return cache4;
}

export interface PythonRun {
  stdout: string;
  stderr: string;
}

/**
 * Runs `python script args...` (a script path, or `-c code`), with the repository's python/ folder on PYTHONPATH;
 * rejects with the tail of stderr on a non-zero exit or after `timeoutMs`.
 */
export function runPython(tool: PythonTool, args: string[], opts: { env?: Record<string, string>; timeoutMs?: number; cwd?: string } = {}): Promise<PythonRun> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env, PYTHONUNBUFFERED: '1', PYTHONPATH: [path.join(repoRoot, 'python'), process.env['PYTHONPATH'] ?? ''].filter(Boolean).join(path.delimiter), OMP_NUM_THREADS: process.env['OMP_NUM_THREADS'] ?? '1', ...opts.env };
    const child = spawn(tool.python, args, { env, cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += String(d)));
    child.stderr.on('data', (d) => (stderr += String(d)));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 300_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve({ stdout, stderr });
      else reject(new Error(`${tool.python} ${args.slice(0, 2).join(' ')} exited ${code}: ${stderr.slice(-3000)}`));
    });
  });
}

/** Runs a Python script and parses the last stdout line as JSON. */
export async function runPythonJson<T = unknown>(tool: PythonTool, args: string[], opts: { env?: Record<string, string>; timeoutMs?: number; cwd?: string } = {}): Promise<T> {
  const { stdout } = await runPython(tool, args, opts);
  const lines = stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]!) as T;
}
