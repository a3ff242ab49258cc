/**
 * Temporary directories for tests: `makeTmpDir(prefix)` creates a fresh directory under os.tmpdir(); every
 * directory made by a test file is removed by an afterAll hook this module registers when the file imports it
 * (set MOE_TUNE_KEEP_TMP=1 to keep them for debugging). `removeTmpDir` removes one early.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll } from 'vitest';

const made = new Set<string>();

export function makeTmpDir(prefix: string): string {
  const safe = prefix.replace(/[^A-Za-z0-9_.-]/g, '_');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `moe-tune-${safe}-`));
  made.add(dir);
  return dir;
}

export function removeTmpDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
  made.delete(dir);
}

/** Removes every directory made so far (the afterAll hook below calls it). */
export function cleanupTmpDirs(): void {
  if (process.env['MOE_TUNE_KEEP_TMP'] === '1') return;
  for (const dir of made) removeTmpDir(dir);
}

afterAll(cleanupTmpDirs);
