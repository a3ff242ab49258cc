/**
 * Run and output directories of commands that write: a run directory is never reused without
 * --resume, an --out directory never replaced without --force, and a command that fails before
 * it wrote anything worth keeping leaves no directory behind — but a directory the user made
 * (an empty --out that existed before) is only emptied of what the command wrote, never removed.
 *
 * A run directory is held under an exclusive lock (RUN_DIR/.moe-tune.lock, see src/io/file-lock.ts)
 * for the whole command: a second `train` / `pretrain` on it (a fresh start or a --resume) gets one
 * line naming the process that holds it. With the lock held, atomic-write leftovers of a killed run
 * (`.model.tmp-*`, `.step-*.tmp-*`) are removed on --resume.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { errorText, removeStaleTemps, tryLock, withPath, type HeldLock } from '../io/index.js';

export const RUN_LOCK_FILE = '.moe-tune.lock';

/** Entries of a directory other than our lock file (false when it cannot be read). */
function contentOf(dir: string): string[] {
  try {
    return fs.readdirSync(dir).filter((e) => e !== RUN_LOCK_FILE);
  } catch {
    return [];
  }
}

/** Refuses an existing non-empty --out without --force (checked before any work). */
export function requireFreshOut(out: string, force: boolean | undefined): void {
  if (!fs.existsSync(out)) return;
  if (!fs.statSync(out).isDirectory()) throw new Error(`${out}: exists and is not a directory`);
  if (!force && contentOf(out).length > 0) throw new Error(`${out}: exists and is not empty (pass --force to replace it)`);
}

export interface RunDirGuard {
  dir: string;
  /** Whether this command created the directory (so it may remove it on failure). */
  created: boolean;
  /** Atomic-write leftovers removed on --resume (relative paths). */
  staleTemps: string[];
  /**
   * On failure: removes what this command wrote to a directory that was new or empty when it
   * started, unless it holds a checkpoint; the directory itself only when this command created it.
   * Never throws (a failing cleanup must not hide the error that caused it); returns a note when
   * the cleanup itself failed.
   */
  failed(): string | null;
  /** Releases the run-directory lock (idempotent). */
  release(): void;
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
      if (e.name === 'checkpoints' && contentOf(path.join(d, e.name)).some((n) => !n.startsWith('.'))) return true;
      if (/^seed-\d+$/.test(e.name)) stack.push(path.join(d, e.name));
    }
  }
  return false;
}

/**
 * A training run directory: without --resume it must not exist yet (or be empty); with --resume
 * it may exist (its newest checkpoint is continued) or not (a fresh start). Takes the run lock.
 */
export function prepareRunDir(dir: string, resume: boolean | undefined, what = 'moe-tune'): RunDirGuard {
  let exists = false;
  try {
    const st = fs.statSync(dir);
    if (!st.isDirectory()) throw new Error(`${dir}: exists and is not a directory`);
    exists = true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOTDIR') throw new Error(`${dir}: a parent of the run directory is a file, not a directory`);
    if (code !== 'ENOENT') throw withPath(err, dir, 'inspecting the run directory');
  }
  if (!exists) {
    try {
      fs.mkdirSync(dir, { recursive: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw withPath(err, dir, 'creating the run directory');
      exists = true; // another process made it just now; the lock below decides
    }
  }
  const created = !exists;
  let lock: HeldLock;
  try {
    lock = tryLock(path.join(dir, RUN_LOCK_FILE), what, `${dir}: run directory`);
  } catch (err) {
    if (created) {
      try {
        fs.rmdirSync(dir);
      } catch {
        // not ours to clean any more
      }
    }
    throw err;
  }
  const emptyAtStart = contentOf(dir).length === 0;
  if (!resume && !emptyAtStart) {
    lock.release();
    throw new Error(`${dir}: run directory exists and is not empty (pass --resume to continue it, or choose another --out)`);
  }
  const staleTemps = resume && !emptyAtStart ? removeStaleTemps(dir) : [];
  return {
    dir,
    created,
    staleTemps,
    failed() {
      if (!emptyAtStart || hasCheckpoint(dir)) {
        lock.release();
        return null;
      }
      let note: string | null = null;
      try {
        for (const e of contentOf(dir)) fs.rmSync(path.join(dir, e), { recursive: true, force: true });
      } catch (err) {
        note = `could not remove what this run wrote to ${dir}: ${errorText(err)}`;
      }
      lock.release();
      if (created && note === null) {
        try {
          fs.rmdirSync(dir);
        } catch (err) {
          note = `could not remove ${dir}: ${errorText(err)}`;
        }
      }
      return note;
    },
    release() {
      lock.release();
    },
  };
}
