/**
 * Run and output directories of commands that write: a run directory is never reused without
 * --resume, an --out directory never replaced without --force, and a command that fails before
 * it wrote anything worth keeping leaves no directory behind.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

function nonEmptyDir(dir: string): boolean {
  try {
    return fs.readdirSync(dir).length > 0;
  } catch {
    return false;
  }
}

/** Refuses an existing non-empty --out without --force (checked before any work). */
export function requireFreshOut(out: string, force: boolean | undefined): void {
  if (!fs.existsSync(out)) return;
  if (!fs.statSync(out).isDirectory()) throw new Error(`${out}: exists and is not a directory`);
  if (!force && nonEmptyDir(out)) throw new Error(`${out}: exists and is not empty (pass --force to replace it)`);
}

export interface RunDirGuard {
  dir: string;
  /** Whether this command created the directory (so it may remove it on failure). */
  created: boolean;
  /** On failure: removes a directory this command created unless it holds a checkpoint. */
  failed(): void;
}

function hasCheckpoint(dir: string): boolean {
  const stack = [dir];
  while (stack.length > 0) {
    const d = stack.pop()!;
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      continue;
    }
    for (const e of entries) {
      if (!e.isDirectory()) continue;
      if (e.name === 'checkpoints' && nonEmptyDir(path.join(d, e.name))) return true;
      if (/^seed-\d+$/.test(e.name)) stack.push(path.join(d, e.name));
    }
  }
  return false;
}

/**
 * A training run directory: without --resume it must not exist yet (or be empty); with --resume
 * it may exist (its newest checkpoint is continued) or not (a fresh start).
 */
export function prepareRunDir(dir: string, resume: boolean | undefined): RunDirGuard {
  const exists = fs.existsSync(dir);
  if (exists && !fs.statSync(dir).isDirectory()) throw new Error(`${dir}: exists and is not a directory`);
  if (exists && !resume && nonEmptyDir(dir)) throw new Error(`${dir}: run directory exists and is not empty (pass --resume to continue it, or choose another --out)`);
  const created = !exists || !nonEmptyDir(dir);
  return {
    dir,
    created,
    failed() {
      if (created && !hasCheckpoint(dir)) fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
