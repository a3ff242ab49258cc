/**
 * bench/results.json: one key per benchmark ("engine", ...). A benchmark replaces its own key and
 * keeps the others; the file is written to a temp file in the same directory, then renamed.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const RESULTS_PATH = join(dirname(fileURLToPath(import.meta.url)), 'results.json');

/** Sets results[key] = value in bench/results.json, keeping the other keys. */
export function mergeResult(key: string, value: unknown, path = RESULTS_PATH): void {
  let all: Record<string, unknown> = {};
  if (existsSync(path)) {
    const text = readFileSync(path, 'utf8');
    try {
      const parsed: unknown = JSON.parse(text);
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) all = parsed as Record<string, unknown>;
      else throw new Error('not an object');
    } catch (e) {
      throw new Error(`${path}: expected a JSON object of benchmark results (${(e as Error).message}); fix or delete it`);
    }
  }
  all[key] = value;
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify(all, null, 2) + '\n');
  renameSync(tmp, path);
}
