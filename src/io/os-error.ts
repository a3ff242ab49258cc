/**
 * OS errors that name their path. Node's errors from calls on a descriptor (write, fsync, close) carry no path:
 * "ENOSPC: no space left on device, write" says nothing about which file. `withPath` turns such an error into one
 * line naming the file, keeping `code` (and `errno`, `syscall`) so callers can still branch on it.
 */
export interface PathError extends Error {
  code?: string;
  errno?: number;
  syscall?: string;
  path?: string;
}

const DESCRIPTIONS: Record<string, string> = {
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  EROFS: 'read-only file system',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOTDIR: 'a path component is not a directory',
  EISDIR: 'is a directory',
  EIO: 'input/output error',
  EMFILE: 'too many open files',
  ENAMETOOLONG: 'file name too long',
  EEXIST: 'already exists',
  ENOENT: 'no such file or directory',
};

/** True for a Node system error (it has a string `code` such as ENOSPC). */
export function isOsError(err: unknown): err is PathError {
  return err instanceof Error && typeof (err as PathError).code === 'string' && /^E[A-Z0-9]+$/.test((err as PathError).code!);
}

/**
 * `err` as an error whose message starts with `file` (unchanged when it already names it, or is not an OS error).
 * `doing` says what was being done ("writing", "creating the directory"), for the message.
 */
export function withPath(err: unknown, file: string, doing = 'writing'): unknown {
  if (!isOsError(err)) return err;
  if (err.message.includes(file)) return err;
  const code = err.code!;
  const what = DESCRIPTIONS[code] ?? err.message.replace(/^[A-Z0-9]+:\s*/, '').replace(/,\s*\w+$/, '');
  const out = new Error(`${file}: ${doing} failed: ${code} (${what})`) as PathError;
  out.code = code;
  if (err.errno !== undefined) out.errno = err.errno;
  if (err.syscall !== undefined) out.syscall = err.syscall;
  out.path = file;
  return out;
}
