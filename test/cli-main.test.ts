/**
 * The CLI shell: every command in the one registry list, help with examples for each, global
 * options (--backend, --threads before the backend loads), and commander's own errors as one line.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { COMMANDS } from '../src/cli/commands/index.js';
import { buildProgram } from '../src/cli/main.js';
import { nativeAvailable } from '../src/tensor/index.js';
import { expectOneErrorLine, runCli, runCliJson } from './helpers/cli.js';
import { FIXTURES } from './helpers/fixtures.js';

const MODEL = path.join(FIXTURES, 'tiny-mixtral');
const HAS_NATIVE = nativeAvailable();

describe('command registry', () => {
  it('every file in src/cli/commands is registered once, in the program', () => {
    const dir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../src/cli/commands');
    const files = fs.readdirSync(dir).filter((f) => f.endsWith('.ts') && f !== 'index.ts').map((f) => f.replace(/\.ts$/, ''));
    expect(COMMANDS.map((c) => c.name).sort()).toEqual(files.sort());
    const program = buildProgram();
    expect(program.commands.map((c) => c.name()).sort()).toEqual(COMMANDS.map((c) => c.name).sort());
  });

  it('--help of every command shows examples', () => {
    const top = runCli(['--help']);
    expect(top.code).toBe(0);
    for (const c of COMMANDS) {
      expect(top.stdout).toContain(`  ${c.name} `);
      const r = runCli([c.name, '--help']);
      expect(r.code, c.name).toBe(0);
      expect(r.stdout, c.name).toMatch(/Examples:\n {2}\$ moe-tune /);
    }
  });
});

describe('global options', () => {
  it('--backend js wins over MOE_TUNE_BACKEND; the env var applies without the flag', () => {
    expect(runCliJson<{ backend: string }>(['--backend', 'js', 'info', '--model', MODEL, '--json'], { env: { MOE_TUNE_BACKEND: 'auto' } }).backend).toBe('js');
    expect(runCliJson<{ backend: string }>(['info', '--model', MODEL, '--json'], { env: { MOE_TUNE_BACKEND: 'js' } }).backend).toBe('js');
  });

  it.skipIf(!HAS_NATIVE)('--threads sets the native thread count before the backend loads', () => {
    const out = runCliJson<{ backend: string; backend_threads: number }>(['--backend', 'native', '--threads', '3', 'info', '--model', MODEL, '--json']);
    expect(out).toMatchObject({ backend: 'native', backend_threads: 3 });
    // global options after the command word work too
    expect(runCliJson<{ backend_threads: number }>(['info', '--model', MODEL, '--json', '--threads', '2', '--backend', 'native']).backend_threads).toBe(2);
  });

  it('bad global options and unknown commands are one line', () => {
    expect(expectOneErrorLine(runCli(['--backend', 'gpu', 'info', '--model', MODEL]))).toMatch(/argument 'gpu' is invalid\. Allowed choices are auto, native, js/);
    expect(expectOneErrorLine(runCli(['--threads', 'x', 'info', '--model', MODEL]))).toMatch(/--threads <n>' argument 'x' is invalid/);
    expect(expectOneErrorLine(runCli(['evaluate']))).toMatch(/unknown command 'evaluate'/);
  });
});
