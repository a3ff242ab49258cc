/**
 * `--model DIR | org/name`: a local directory as it is, or a Hugging Face repo id resolved through
 * the Hub cache the way huggingface_hub does it:
 *
 * - HF_HUB_OFFLINE=1: the cached snapshot (refs/<revision> -> snapshots/<commit>) or a clear error,
 *   never a request;
 * - a commit sha already in the cache: used as it is (a commit never changes);
 * - otherwise the repo is pulled (files already in the cache are not downloaded again); when the
 *   Hub cannot be reached and the cache has the revision, the cached snapshot is used with a
 *   warning (one quick try, no long retries), so a pulled repo needs no network.
 */
import * as fs from 'node:fs';
import { findCachedSnapshot, hubCacheDir, hubOffline, hubPull, HubError, type Env } from '../hub/index.js';
import { COMMIT_SHA } from '../hub/remote-path.js';

/** Whether text reads as a Hub repo id (org/name) rather than a path. */
export function looksLikeRepoId(text: string): boolean {
  return /^[A-Za-z0-9][A-Za-z0-9._-]*\/[A-Za-z0-9][A-Za-z0-9._-]*$/.test(text) && !text.startsWith('.') && !text.includes('..');
}

export interface ModelSourceOptions {
  endpoint?: string;
  cacheDir?: string;
  revision?: string;
  log?: (line: string) => void;
  warn?: (line: string) => void;
  env?: Env;
  /** Like HF_HUB_OFFLINE=1. */
  offline?: boolean;
}

/** The local directory of a --model value (from the Hub cache, or pulled, when it is a repo id and not a local path). */
export async function resolveModelDir(ref: string, opts: ModelSourceOptions = {}): Promise<string> {
  if (fs.existsSync(ref)) return ref;
  if (!looksLikeRepoId(ref)) throw new Error(`${ref}: model directory not found`);
  const env = opts.env ?? process.env;
  const revision = opts.revision ?? 'main';
  const cached = findCachedSnapshot(ref, { revision, ...(opts.cacheDir ? { cacheDir: opts.cacheDir } : {}), env });
  const warn = opts.warn ?? ((line: string) => process.stderr.write(`moe-tune: warning: ${line}\n`));
  if (opts.offline === true || hubOffline(env)) {
    if (cached) {
      opts.log?.(`${ref}@${cached.commit.slice(0, 12)} from the Hub cache (offline): ${cached.snapshotDir}`);
      return cached.snapshotDir;
    }
    throw new Error(`${ref}: revision ${revision} is not in the Hub cache (${hubCacheDir(opts.cacheDir, env)}) and HF_HUB_OFFLINE is set, so nothing is downloaded; pull it first (moe-tune hub pull ${ref}) or unset HF_HUB_OFFLINE`);
  }
  if (cached && COMMIT_SHA.test(revision)) {
    opts.log?.(`${ref}@${revision.slice(0, 12)} from the Hub cache: ${cached.snapshotDir}`);
    return cached.snapshotDir;
  }
  opts.log?.(`pulling ${ref} from the Hub`);
  try {
    const res = await hubPull(ref, {
      ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
      ...(opts.cacheDir ? { cacheDir: opts.cacheDir } : {}),
      revision,
      env,
      ...(cached ? { retry: { maxAttempts: 1 } } : {}),
    });
    opts.log?.(`pulled ${ref}@${res.commit.slice(0, 12)} into ${res.snapshotDir}`);
    return res.snapshotDir;
  } catch (err) {
    if (cached && err instanceof HubError && (err.kind === 'network' || err.kind === 'server' || err.kind === 'rate-limited')) {
      warn(`${err.message}; using the cached snapshot of ${ref}@${cached.commit.slice(0, 12)} (${cached.snapshotDir})`);
      return cached.snapshotDir;
    }
    throw err;
  }
}
