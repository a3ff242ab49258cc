/**
 * Finding a repo revision in the Hub cache without the network, as huggingface_hub does with
 * `local_files_only=True` / `HF_HUB_OFFLINE=1`: a commit sha names `snapshots/<sha>` directly; a branch or tag is
 * read from `refs/<revision>` (written by a pull, ours or Python's).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Env } from './auth.js';
import { hubCacheDir, repoCachePaths } from './cache-layout.js';
import { HubError } from './hub-error.js';
import { COMMIT_SHA, validateRevision } from './remote-path.js';
import { parseRepo, repoLabel } from './repo-id.js';

/** huggingface_hub's truthy environment values (`1`, `ON`, `YES`, `TRUE`, any case). */
export function envFlag(value: string | undefined): boolean {
  return value !== undefined && ['1', 'ON', 'YES', 'TRUE'].includes(value.trim().toUpperCase());
}

/** Whether HF_HUB_OFFLINE asks for no network at all. */
export function hubOffline(env: Env = process.env): boolean {
  return envFlag(env['HF_HUB_OFFLINE']);
}

export interface CachedSnapshot {
  snapshotDir: string;
  commit: string;
  cacheDir: string;
}

export interface CacheLookupOptions {
  revision?: string;
  cacheDir?: string;
  env?: Env;
}

/** The cached snapshot of `repoDesignation` at `revision` (default main), or null when the cache lacks it. */
export function findCachedSnapshot(repoDesignation: string, o: CacheLookupOptions = {}): CachedSnapshot | null {
  const repo = parseRepo(repoDesignation);
  const revision = o.revision ?? 'main';
  validateRevision(revision, `repo ${repoLabel(repo)}`);
  const cacheDir = hubCacheDir(o.cacheDir, o.env ?? process.env);
  const paths = repoCachePaths(cacheDir, repo);
  let commit = revision;
  if (!COMMIT_SHA.test(revision)) {
    try {
      commit = fs.readFileSync(path.join(paths.refs, ...revision.split('/')), 'utf8').trim();
    } catch {
      return null;
    }
    if (!COMMIT_SHA.test(commit)) {
      throw new HubError('protocol', `${path.join(paths.refs, revision)}: expected a 40-hex commit sha, found ${JSON.stringify(commit.slice(0, 60))}`);
    }
  }
  const snapshotDir = path.join(paths.snapshots, commit);
  try {
    if (!fs.statSync(snapshotDir).isDirectory() || fs.readdirSync(snapshotDir).length === 0) return null;
  } catch {
    return null;
  }
  return { snapshotDir, commit, cacheDir };
}
