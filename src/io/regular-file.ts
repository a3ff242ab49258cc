/**
 * Refusing what is not a regular file before opening it. Opening a FIFO for reading blocks until a
 * writer appears, and a character device (/dev/zero, /dev/urandom) never ends, so a weights, config
 * or data path that names one would hang a command; `stat` does neither, so we look first and fail
 * with one line naming the path and what it is.
 */
import * as fs from 'node:fs';

/** What a non-regular directory entry is, in words. */
export function fileKind(stat: fs.Stats): string {
  if (stat.isFile()) return 'a regular file';
  if (stat.isDirectory()) return 'a directory';
  if (stat.isFIFO()) return 'a FIFO (named pipe)';
  if (stat.isCharacterDevice()) return 'a character device';
  if (stat.isBlockDevice()) return 'a block device';
  if (stat.isSocket()) return 'a socket';
  return 'not a regular file';
}

/**
 * Throws "PATH: not found" / "PATH: is a FIFO (named pipe), not a regular file (expected WHAT)"
 * unless `file` is a regular file (symlinks are followed). Returns its stat.
 */
export function requireRegularFile(file: string, what: string): fs.Stats {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new Error(`${file}: ${code === 'ENOENT' ? `${what} not found` : `cannot read (${code ?? (err as Error).message})`}`);
  }
  if (!stat.isFile()) throw new Error(`${file}: is ${fileKind(stat)}, not a regular file (expected ${what})`);
  return stat;
}
