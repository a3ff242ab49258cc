/**
 * Runs the moe-tune CLI as a child process from the TypeScript sources (`node --import tsx
 * src/cli/main.ts`), so tests never depend on a stale dist/. The js backend is the default here;
 * pass `--backend native` (or env) to use the addon.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const CLI_MAIN = path.join(root, 'src/cli/main.ts');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function runCli(args: readonly string[], opts: { env?: Record<string, string>; cwd?: string; timeoutMs?: number } = {}): CliResult {
  const r = spawnSync(process.execPath, ['--import', 'tsx', CLI_MAIN, ...args], {
    cwd: opts.cwd ?? root,
    env: { ...process.env, MOE_TUNE_BACKEND: 'js', ...opts.env },
    encoding: 'utf8',
    timeout: opts.timeoutMs ?? 120_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.error) throw r.error;
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Runs a command that must succeed with --json output, and parses it. */
export function runCliJson<T = Record<string, unknown>>(args: readonly string[], opts: { env?: Record<string, string> } = {}): T {
  const r = runCli(args, opts);
  if (r.code !== 0) throw new Error(`moe-tune ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

/**
 * The stderr of a failed command with its one error line: non-zero exit, exactly one non-warning
 * line starting "moe-tune: ", no stack trace. Returns that line.
 */
export function expectOneErrorLine(r: CliResult): string {
  if (r.code === 0) throw new Error(`expected a failure, got exit 0 with stdout ${r.stdout.slice(0, 200)}`);
  const lines = r.stderr.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('moe-tune: warning:'));
  if (lines.length !== 1) throw new Error(`expected one error line, got ${lines.length}:\n${r.stderr}`);
  const line = lines[0]!;
  if (!line.startsWith('moe-tune: ')) throw new Error(`error line does not start with "moe-tune: ": ${line}`);
  if (/\n\s+at /.test(r.stderr)) throw new Error(`stack trace printed:\n${r.stderr}`);
  return line;
}

/** Runs the CLI and sends SIGINT once stdout shows `trigger`; resolves with the exit code and output. */
export function runInterrupted(args: readonly string[], trigger: RegExp): Promise<{ code: number | null; stdout: string; stderr: string; signalled: boolean }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CLI_MAIN, ...args], { cwd: root, env: { ...process.env, MOE_TUNE_BACKEND: 'js' } });
    let stdout = '';
    let stderr = '';
    let signalled = false;
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (!signalled && trigger.test(stdout)) {
        signalled = true;
        child.kill('SIGINT');
      }
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr, signalled }));
  });
}
