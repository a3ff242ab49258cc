/**
 * The Hugging Face hub cache, laid out exactly as the Python `huggingface_hub` lays it out so both share it:
 *
 *   <cache>/models--org--name/
 *     blobs/<sha256 of LFS files | git blob sha1 of regular files>   the bytes, once per content
 *     blobs/<hash>.incomplete                                          a download in progress (resumable)
 *     snapshots/<commit sha>/<path>   relative symlink to ../../blobs/<hash> (one more ../ per directory level)
 *     refs/<revision>                 the commit sha the branch / tag pointed to (no newline), when the
 *                                     revision asked for is not itself a commit sha
 *
 * <cache> is the cacheDir option, else HF_HUB_CACHE (or the older HUGGINGFACE_HUB_CACHE), else $HF_HOME/hub.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { expandHome, hfHomeDir, type Env } from './auth.js';
import { writeFileAtomic, tempSiblingPath, removeQuietly } from '../io/atomic.js';
import { joinInside } from './remote-path.js';
import { repoFolderName, type RepoRef } from './repo-id.js';

/** The hub cache directory (absolute). */
export function hubCacheDir(option?: string, env: Env = process.env): string {
  const pick = [option, env['HF_HUB_CACHE'], env['HUGGINGFACE_HUB_CACHE']].find((v) => v !== undefined && v.trim() !== '');
  if (pick !== undefined) return path.resolve(expandHome(pick.trim(), env));
  return path.join(hfHomeDir(env), 'hub');
}

export interface RepoCachePaths {
  /** `<cache>/models--org--name` */
  storage: string;
  blobs: string;
  snapshots: string;
  refs: string;
}

export function repoCachePaths(cacheDir: string, repo: RepoRef): RepoCachePaths {
  const storage = path.join(cacheDir, repoFolderName(repo));
  return { storage, blobs: path.join(storage, 'blobs'), snapshots: path.join(storage, 'snapshots'), refs: path.join(storage, 'refs') };
}

/** Path of a validated repo file inside a snapshot directory. */
export function snapshotFilePath(snapshotDir: string, repoPath: string, context: string): string {
  return joinInside(snapshotDir, repoPath, context);
}

/**
 * Makes `linkPath` a relative symlink to `blobPath` (replacing whatever is there, atomically via rename).
 * Where symlinks are not allowed (some Windows setups), copies the blob instead, as the Python client does.
 */
export function linkSnapshotFile(blobPath: string, linkPath: string): void {
  fs.mkdirSync(path.dirname(linkPath), { recursive: true });
  const target = path.relative(path.dirname(linkPath), blobPath);
  try {
    if (fs.readlinkSync(linkPath) === target) return;
  } catch {
    // absent or not a link: (re)create below
  }
  const tmp = tempSiblingPath(linkPath, 'link');
  try {
    fs.symlinkSync(target, tmp);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw err;
    fs.copyFileSync(blobPath, tmp);
  }
  try {
    fs.renameSync(tmp, linkPath);
  } catch (err) {
    removeQuietly(tmp);
    throw err;
  }
}

/** Writes `refs/<revision>` = commit sha (no trailing newline, as the Python client writes it). */
export function writeRef(paths: RepoCachePaths, revision: string, commit: string, context: string): void {
  const refPath = joinInside(paths.refs, revision, context);
  try {
    if (fs.readFileSync(refPath, 'utf8') === commit) return;
  } catch {
    // absent: write it
  }
  writeFileAtomic(refPath, commit);
}
