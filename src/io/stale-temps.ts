/**
 * Leftovers of writes that were killed midway: the hidden temp siblings src/io/atomic.ts builds before renaming
 * (`.NAME.tmp-...`, `.NAME.old-...`, `.NAME.link-...`). Only call this on a directory the caller holds exclusively
 * (a run directory under its lock): then every such entry is a leftover of a dead process, never a write in progress.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { removeQuietly } from './atomic.js';

/** Names written by atomic.ts (and checkpoint temp dirs) while a write is in progress. */
export const ATOMIC_TEMP_NAME = /^\..+\.(tmp|old|link)-[A-Za-z0-9-]+$/;

/**
 * Removes the atomic-write leftovers under `root` (the directory itself and its subdirectories down to `maxDepth`,
 * not following symlinks); returns their paths relative to `root`.
 */
export function removeStaleTemps(root: string, maxDepth = 4): string[] {
  const removed: string[] = [];
  const walk = (dir: string, rel: string, depth: number): void => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const r = rel === '' ? e.name : `${rel}/${e.name}`;
      if (ATOMIC_TEMP_NAME.test(e.name)) {
        removeQuietly(path.join(dir, e.name));
        removed.push(r);
      } else if (e.isDirectory() && depth < maxDepth) {
        walk(path.join(dir, e.name), r, depth + 1);
      }
    }
  };
  walk(root, '', 0);
  return removed.sort();
}
