/**
 * Cross-process exclusive locks on a lock file, for the run directory of a training run and for each blob of the Hub
 * cache. Node has no flock(2), so ownership is the file itself: the lock is a file holding its owner
 * `{pid, host, start, what}`, created atomically (written under a temp name, then hard-linked to the lock name, which
 * fails if the name exists). A lock whose owner is gone is stale and is taken over: same host and the process no
 * longer exists, or it exists but started at another time (its pid was reused; Linux: /proc/<pid>/stat). A lock file
 * that holds no owner (an empty file, as Python's `filelock` leaves behind after a download) is not held by a
 * moe-tune process and is taken over too. Taking over renames the stale file away and checks it was still the one
 * judged stale (same inode), so two processes can never both win.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { withPath } from './os-error.js';

export interface LockOwner {
  pid: number;
  host: string;
  /** The owner's process start time (Linux clock ticks since boot, as a string), or null where unknown. */
  start: string | null;
  /** What holds it, for messages ("moe-tune train", "hub pull org/name"). */
  what: string;
  /** When it was taken (ISO). */
  since: string;
}

export interface HeldLock {
  readonly path: string;
  /** Removes the lock file if it is still ours (idempotent). */
  release(): void;
}

/** The lock is held by another live process. */
export class LockBusyError extends Error {
  readonly lockPath: string;
  readonly owner: LockOwner | null;
  constructor(lockPath: string, owner: LockOwner | null, message: string) {
    super(message);
    this.name = 'LockBusyError';
    this.lockPath = lockPath;
    this.owner = owner;
  }
}

/** Start time of a process (field 22 of /proc/<pid>/stat), or null where /proc is not available. */
export function processStartTime(pid: number): string | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19] ?? null; // field 22 overall; fields here start at field 3
  } catch {
    return null;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readOwner(lockPath: string): { owner: LockOwner | null; ino: number } | null {
  let fd: number;
  try {
    fd = fs.openSync(lockPath, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return null;
    if (code === 'ELOOP') return { owner: null, ino: fs.lstatSync(lockPath).ino }; // a planted symlink: not an owner
    throw withPath(err, lockPath, 'reading the lock');
  }
  try {
    const ino = fs.fstatSync(fd).ino;
    const buf = Buffer.alloc(4096);
    const n = fs.readSync(fd, buf, 0, buf.length, 0);
    try {
      const o = JSON.parse(buf.subarray(0, n).toString('utf8')) as Partial<LockOwner>;
      if (typeof o.pid !== 'number' || typeof o.host !== 'string') return { owner: null, ino };
      return { owner: { pid: o.pid, host: o.host, start: typeof o.start === 'string' ? o.start : null, what: String(o.what ?? 'another process'), since: String(o.since ?? '') }, ino };
    } catch {
      return { owner: null, ino };
    }
  } finally {
    fs.closeSync(fd);
  }
}

/** Whether the owner recorded in a lock file is a live process (the only owners that hold a lock). */
export function ownerAlive(owner: LockOwner | null): boolean {
  if (owner === null) return false;
  if (owner.host !== os.hostname()) return true; // cannot check another machine: assume held
  if (owner.pid === process.pid) return true;
  if (!alive(owner.pid)) return false;
  const start = processStartTime(owner.pid);
  return owner.start === null || start === null || start === owner.start;
}

const held = new Set<string>();
let exitHook = false;

function releaseAllOnExit(): void {
  if (exitHook) return;
  exitHook = true;
  process.on('exit', () => {
    for (const p of held) {
      try {
        fs.unlinkSync(p);
      } catch {
        // already gone
      }
    }
  });
}

/** One attempt: the lock, or the live owner's record when someone else holds it. */
function attempt(lockPath: string, what: string): HeldLock | { busy: LockOwner | null } {
  const dir = path.dirname(lockPath);
  try {
    fs.mkdirSync(dir, { recursive: true });
  } catch (err) {
    throw withPath(err, dir, 'creating the lock directory');
  }
  const me: LockOwner = { pid: process.pid, host: os.hostname(), start: processStartTime(process.pid), what, since: new Date().toISOString() };
  const tmp = path.join(dir, `.${path.basename(lockPath)}.new-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    fs.writeFileSync(tmp, `${JSON.stringify(me)}\n`, { flag: 'wx' });
  } catch (err) {
    throw withPath(err, tmp, 'writing the lock');
  }
  try {
    for (let tries = 0; tries < 50; tries++) {
      try {
        fs.linkSync(tmp, lockPath);
        const ino = fs.lstatSync(lockPath).ino;
        held.add(lockPath);
        releaseAllOnExit();
        let released = false;
        return {
          path: lockPath,
          release() {
            if (released) return;
            released = true;
            held.delete(lockPath);
            try {
              if (fs.lstatSync(lockPath).ino === ino) fs.unlinkSync(lockPath);
            } catch {
              // gone already
            }
          },
        };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw withPath(err, lockPath, 'taking the lock');
      }
      const cur = readOwner(lockPath);
      if (cur === null) continue; // released meanwhile: try again
      if (ownerAlive(cur.owner)) return { busy: cur.owner };
      // stale: move it away, and make sure what we moved is the file we judged
      const aside = path.join(dir, `.${path.basename(lockPath)}.stale-${process.pid}-${randomBytes(4).toString('hex')}`);
      try {
        fs.renameSync(lockPath, aside);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw withPath(err, lockPath, 'replacing a stale lock');
      }
      if (fs.lstatSync(aside).ino !== cur.ino) {
        // someone else replaced the stale lock between our read and our rename: give theirs back
        try {
          fs.linkSync(aside, lockPath);
        } catch {
          // a third process got in; its lock stands
        }
      }
      fs.rmSync(aside, { force: true });
    }
    throw new Error(`${lockPath}: could not take the lock (it kept changing)`);
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

function describeOwner(owner: LockOwner | null): string {
  if (owner === null) return 'another process';
  return `${owner.what} (pid ${owner.pid}${owner.host === os.hostname() ? '' : ` on ${owner.host}`}${owner.since ? `, since ${owner.since}` : ''})`;
}

/** Takes the lock now or throws LockBusyError naming `subject` and the owner. */
export function tryLock(lockPath: string, what: string, subject: string = lockPath): HeldLock {
  const r = attempt(lockPath, what);
  if ('busy' in r) throw new LockBusyError(lockPath, r.busy, `${subject}: in use by ${describeOwner(r.busy)}; wait for it to finish or stop it (lock file ${lockPath})`);
  return r;
}

export interface WaitLockOptions {
  /** Give up after this long (default 10 minutes). */
  timeoutMs?: number;
  /** Poll interval (default 100 ms). */
  pollMs?: number;
  /** Called once when the lock is busy and we start waiting. */
  onWait?: (owner: LockOwner | null) => void;
}

/** Waits for the lock (polling), up to `timeoutMs`; throws LockBusyError after that. */
export async function waitLock(lockPath: string, what: string, subject: string, o: WaitLockOptions = {}): Promise<HeldLock> {
  const timeoutMs = o.timeoutMs ?? 600_000;
  const until = Date.now() + timeoutMs;
  let told = false;
  for (;;) {
    const r = attempt(lockPath, what);
    if (!('busy' in r)) return r;
    if (!told) {
      told = true;
      o.onWait?.(r.busy);
    }
    if (Date.now() >= until) {
      throw new LockBusyError(lockPath, r.busy, `${subject}: still in use by ${describeOwner(r.busy)} after waiting ${Math.round(timeoutMs / 1000)} s (lock file ${lockPath})`);
    }
    await new Promise((resolve) => setTimeout(resolve, o.pollMs ?? 100));
  }
}
