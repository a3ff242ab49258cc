/**
 * Atomic writes: a file (or a whole directory) is built under a temporary sibling name and renamed into place, so
 * readers see either the old content or the complete new one, and a failed write leaves nothing behind.
 * Temp names are hidden siblings of the target, `.NAME.tmp-...`, so a crash's leftovers are easy to spot.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { errorText } from './file-format-error.js';
import { withPath } from './os-error.js';

/** A fresh temp path next to `target` (same directory, so the final rename stays on one filesystem). */
export function tempSiblingPath(target: string, tag = 'tmp'): string {
  const dir = path.dirname(target);
  return path.join(dir, `.${path.basename(target)}.${tag}-${process.pid}-${randomBytes(4).toString('hex')}`);
}

/** Removes a file or directory if it exists, swallowing errors (used on failure paths only). */
export function removeQuietly(p: string): void {
  try {
    fs.rmSync(p, { recursive: true, force: true });
  } catch {
    // best effort: the original error is the one worth reporting
  }
}

/** Writes all of `data` through an open descriptor, looping over short writes. */
export function writeAllSync(fd: number, data: Uint8Array): void {
  let done = 0;
  while (done < data.byteLength) {
    done += fs.writeSync(fd, data, done, Math.min(data.byteLength - done, 1 << 30));
  }
}

/**
 * Creates a temp file next to `target`, lets `fill(fd)` write it, fsyncs, and renames it to `target`.
 * On any error the temp file is removed and the error rethrown.
 */
export function writeThroughTempFile(target: string, fill: (fd: number) => void): void {
  try {
    fs.mkdirSync(path.dirname(target), { recursive: true });
  } catch (err) {
    throw withPath(err, path.dirname(target), 'creating the directory');
  }
  const tmp = tempSiblingPath(target);
  let fd: number | null = null;
  try {
    fd = fs.openSync(tmp, 'wx');
    fill(fd);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = null;
    fs.renameSync(tmp, target);
  } catch (err) {
    if (fd !== null) {
      try {
        fs.closeSync(fd);
      } catch {
        // already failing
      }
    }
    removeQuietly(tmp);
    throw withPath(err, target);
  }
}

/**
 * fsyncs a directory so that the names created or renamed in it survive a power loss (Linux; a no-op where
 * directories cannot be opened for fsync).
 */
export function fsyncDir(dir: string): void {
  let fd: number | null = null;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EISDIR' && code !== 'EINVAL' && code !== 'EPERM' && code !== 'EACCES' && code !== 'EBADF') throw withPath(err, dir, 'syncing the directory');
  } finally {
    if (fd !== null) fs.closeSync(fd);
  }
}

/** Atomically replaces `target` with `data` (a string is written as UTF-8). */
export function writeFileAtomic(target: string, data: string | Uint8Array): void {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  writeThroughTempFile(target, (fd) => writeAllSync(fd, bytes));
}

/** Atomically writes `value` as JSON, two-space indented, with a final newline. */
export function writeJsonAtomic(target: string, value: unknown): void {
  const text = JSON.stringify(value, null, 2);
  if (text === undefined) throw new Error(`${target}: cannot write ${typeof value} as JSON`);
  writeFileAtomic(target, `${text}\n`);
}

export interface AtomicDirOptions {
  /** Replace an existing non-empty directory (its old content is removed once the new one is in place). */
  force?: boolean;
}

/**
 * Builds a directory in a sibling temp dir, then renames it to `finalDir`. `build` receives the temp dir path and
 * may be async; its result is returned. Refuses to replace an existing non-empty `finalDir` unless `force` (checked
 * before building and again before the rename). On failure the temp dir is removed and `finalDir` is untouched.
 */
export async function withAtomicDir<T>(
  finalDir: string,
  build: (tmpDir: string) => T | Promise<T>,
  options: AtomicDirOptions = {},
): Promise<T> {
  const target = path.resolve(finalDir);
  const parent = path.dirname(target);
  try {
    fs.mkdirSync(parent, { recursive: true });
  } catch (err) {
    throw withPath(err, parent, 'creating the directory');
  }
  checkReplaceable(target, options.force === true);
  const tmp = fs.mkdtempSync(path.join(parent, `.${path.basename(target)}.tmp-`));
  let result: T;
  try {
    result = await build(tmp);
    fsyncDir(tmp);
    const state = checkReplaceable(target, options.force === true);
    if (state === 'absent') {
      fs.renameSync(tmp, target);
    } else if (state === 'empty') {
      fs.rmdirSync(target);
      fs.renameSync(tmp, target);
    } else {
      const old = tempSiblingPath(target, 'old');
      fs.renameSync(target, old);
      try {
        fs.renameSync(tmp, target);
      } catch (err) {
        fs.renameSync(old, target);
        throw err;
      }
      removeQuietly(old);
    }
    fsyncDir(parent);
  } catch (err) {
    removeQuietly(tmp);
    throw withPath(err, target);
  }
  return result;
}

function checkReplaceable(target: string, force: boolean): 'absent' | 'empty' | 'full' {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(target);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'absent';
    throw new Error(`${target}: cannot inspect the output directory: ${errorText(err)}`);
  }
  if (!stat.isDirectory()) throw new Error(`${target}: exists and is not a directory; refusing to replace it`);
  if (fs.readdirSync(target).length === 0) return 'empty';
  if (!force) throw new Error(`${target}: directory exists and is not empty; refusing to overwrite it without force (--force)`);
  return 'full';
}
