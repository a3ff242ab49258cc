/**
 * `hubPull`: downloads a repo revision (or the files matching `include`) into the shared Hugging Face cache and
 * returns the snapshot directory, a plain model / adapter directory whose files are symlinks into `blobs/`.
 *
 * Protocol (via @huggingface/hub, with our fetch): the revision's commit sha from the repo info endpoint, the full
 * file list from the tree endpoint at that commit, then per missing file its download info (resolve URL, size,
 * ETag) and a ranged GET of the resolve URL. Every name the server sends is checked before anything is written: a
 * listing holding one unsafe name (`..`, absolute, backslash, NUL, ...) is refused as a whole. Files whose blob is
 * already in the cache (same content hash, same size) are not downloaded again; with `verify` their content is
 * hashed first and a blob that fails is fetched again.
 *
 * Limits and locks: the listing is streamed (list-tree.ts: pages and entries capped, only the selected files kept);
 * each blob is downloaded under a cross-process lock, `<cache>/.locks/<repo folder>/<blob>.lock` as huggingface_hub
 * places it, so two pulls into one cache never write one `.incomplete` at once (the second waits, then finds the
 * blob); the partial file is never followed if it is a link (download-blob.ts).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { datasetInfo, fileDownloadInfo, modelInfo } from '@huggingface/hub';
import { waitLock } from '../io/file-lock.js';
import { HubError } from './hub-error.js';
import { hubCallContext, asHubError, type HubCallOptions, type HubCallContext } from './hub-call.js';
import { hubCacheDir, linkSnapshotFile, repoCachePaths, snapshotFilePath, writeRef } from './cache-layout.js';
import { COMMIT_SHA, SHA256_HEX, quoteName, validateRemotePath, validateRevision } from './remote-path.js';
import { libraryRepo, parseRepo, repoFolderName, repoLabel, type RepoRef } from './repo-id.js';
import { listTree, DEFAULT_MAX_LIST_ENTRIES, DEFAULT_MAX_LIST_PAGES, type TreeEntry } from './list-tree.js';
import { hashFile, hashName } from './content-hash.js';
import { findCachedSnapshot, hubOffline } from './cache-lookup.js';
import { pathFilter } from './glob.js';
import { downloadBlob } from './download-blob.js';
import type { ExpectedHash } from './content-hash.js';

export interface HubPullOptions extends HubCallOptions {
  /** Branch, tag or commit sha (default "main"). */
  revision?: string;
  /** Globs selecting files (see glob.ts); all files when absent or empty. */
  include?: readonly string[];
  /** Globs removing files from the selection. */
  exclude?: readonly string[];
  /** Hub cache directory (default: HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub). */
  cacheDir?: string;
  onProgress?: (event: HubPullProgress) => void;
  /** Files downloaded at once (default 4). */
  concurrency?: number;
  /** Refuse listings longer than this (default 200 000 entries). */
  maxListEntries?: number;
  /** Refuse listings of more pages than this (default 10 000). */
  maxListPages?: number;
  /** Hash blobs already in the cache before using them; one that fails is downloaded again (default false). */
  verify?: boolean;
  /** How long to wait for another process's lock on a blob (default 10 minutes). */
  lockTimeoutMs?: number;
  /** Warnings: a corrupt cached blob replaced, a planted link removed, waiting for another pull's lock. */
  onWarning?: (line: string) => void;
}

export type HubPullProgress =
  | { type: 'resolved'; repo: string; revision: string; commit: string; files: number; bytes: number }
  | { type: 'file'; path: string; state: 'cached' | 'verified' | 'start' | 'bytes' | 'done'; bytes: number; total: number };

export interface PulledFile {
  /** Path inside the repo. */
  path: string;
  size: number;
  /** Blob file name: sha256 (LFS) or git blob sha1 (regular). */
  blob: string;
  hash: ExpectedHash;
  /** cached: already in the cache; downloaded: fetched from byte 0; resumed: continued a partial download. */
  status: 'cached' | 'downloaded' | 'resumed';
}

export interface HubPullResult {
  /** `<cache>/models--org--name/snapshots/<commit>`: the model directory to load. */
  snapshotDir: string;
  /** `<cache>/models--org--name` */
  storageDir: string;
  commit: string;
  revision: string;
  files: PulledFile[];
}

interface RemoteFile {
  path: string;
  size: number;
  expected: ExpectedHash;
}

/**
 * Checks listing entries one at a time (names, types, sizes, hashes, duplicates, a file that is also a directory),
 * keeping only the files `keep` selects; `finish()` returns them. Throws before anything is written.
 */
export class ListingChecker {
  private readonly kept: RemoteFile[] = [];
  private readonly filePaths = new Set<string>();
  private readonly dirPaths = new Set<string>();
  total = 0;

  constructor(private readonly context: string, private readonly keep: (path: string) => boolean = () => true) {}

  add(e: TreeEntry): void {
    const context = this.context;
    validateRemotePath(e.path, context);
    if (e.type === 'directory') {
      this.dirPaths.add(e.path);
      return;
    }
    if (e.type !== 'file') throw new HubError('protocol', `${context}: listing entry ${quoteName(e.path)} has unknown type ${quoteName(String(e.type))}`);
    if (this.filePaths.has(e.path)) throw new HubError('protocol', `${context}: the file list names ${quoteName(e.path)} twice`);
    this.filePaths.add(e.path);
    this.total++;
    if (!Number.isSafeInteger(e.size) || e.size! < 0) {
      throw new HubError('protocol', `${context}: listing entry ${quoteName(e.path)} has invalid size ${quoteName(String(e.size))}`);
    }
    let expected: ExpectedHash;
    if (e.lfs !== undefined && e.lfs !== null) {
      const oid = String(e.lfs.oid).toLowerCase();
      if (!SHA256_HEX.test(oid)) throw new HubError('protocol', `${context}: listing entry ${quoteName(e.path)} has LFS oid ${quoteName(String(e.lfs.oid))}; expected 64 hex digits`);
      if (e.lfs.size !== e.size) throw new HubError('protocol', `${context}: listing entry ${quoteName(e.path)} has size ${e.size} but LFS size ${e.lfs.size}`);
      expected = { algorithm: 'sha256', hex: oid };
    } else {
      const oid = String(e.oid ?? '').toLowerCase();
      if (!COMMIT_SHA.test(oid)) throw new HubError('protocol', `${context}: listing entry ${quoteName(e.path)} has oid ${quoteName(String(e.oid))}; expected a 40-hex git blob id`);
      expected = { algorithm: 'git-sha1', hex: oid };
    }
    if (this.keep(e.path)) this.kept.push({ path: e.path, size: e.size!, expected });
  }

  finish(): RemoteFile[] {
    for (const f of this.filePaths) {
      let cut = f.indexOf('/');
      while (cut > 0) {
        const dir = f.slice(0, cut);
        if (this.filePaths.has(dir)) throw new HubError('protocol', `${this.context}: the file list has both a file ${quoteName(dir)} and a file ${quoteName(f)} under it`);
        cut = f.indexOf('/', cut + 1);
      }
      if (this.dirPaths.has(f)) throw new HubError('protocol', `${this.context}: the file list names ${quoteName(f)} as both a file and a directory`);
    }
    return this.kept;
  }
}

/** Checks every listed name and hash; returns the files, or throws before anything is written. */
export function checkListing(entries: readonly TreeEntry[], context: string): RemoteFile[] {
  const c = new ListingChecker(context);
  for (const e of entries) c.add(e);
  return c.finish();
}

/** Strips W/ and quotes from an ETag. */
export function normalizeEtag(etag: string): string {
  return etag.trim().replace(/^W\//, '').replace(/^"(.*)"$/, '$1');
}

/** Encodes each segment of a repo path for a URL (spaces, `#`, `?` in file names). */
function encodeRepoPath(p: string): string {
  return p.split('/').map(encodeURIComponent).join('/');
}

async function resolveCommit(ctx: HubCallContext, repo: RepoRef, revision: string): Promise<string> {
  const params = { name: repo.id, revision, hubUrl: ctx.endpoint, fetch: ctx.fetch, additionalFields: ['sha' as const] };
  const info = repo.type === 'model' ? await modelInfo(params) : await datasetInfo(params);
  const sha = (info as { sha?: unknown }).sha;
  if (typeof sha !== 'string' || !COMMIT_SHA.test(sha)) {
    throw new HubError('protocol', `${repoLabel(repo)}: ${ctx.endpoint} did not return a commit sha for revision ${quoteName(revision)} (got ${quoteName(String(sha))})`);
  }
  return sha;
}

/**
 * Blobs being fetched in this process, so that two files with the same content (one blob) or two concurrent
 * pulls never write the same `.incomplete` file at once; the second caller waits for the first.
 */
const inFlight = new Map<string, Promise<PulledFile['status']>>();

async function ensureBlob(blobPath: string, fetchIt: () => Promise<PulledFile['status']>): Promise<PulledFile['status']> {
  const running = inFlight.get(blobPath);
  if (running !== undefined) {
    await running;
    return 'cached';
  }
  const p = fetchIt();
  inFlight.set(blobPath, p);
  try {
    return await p;
  } finally {
    inFlight.delete(blobPath);
  }
}

async function runPool<T>(items: readonly T[], concurrency: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed: unknown;
  const worker = async (): Promise<void> => {
    while (failed === undefined && next < items.length) {
      const item = items[next++]!;
      try {
        await work(item);
      } catch (err) {
        if (failed === undefined) failed = err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, worker));
  if (failed !== undefined) throw failed;
}

/** HF_HUB_OFFLINE: the cached snapshot's files (those the filters select), or a HubError; no request is made. */
function offlineResult(repoDesignation: string, revision: string, filter: (p: string) => boolean, options: HubPullOptions): HubPullResult {
  const found = findCachedSnapshot(repoDesignation, { revision, ...(options.cacheDir ? { cacheDir: options.cacheDir } : {}), env: options.env ?? process.env });
  if (found === null) {
    throw new HubError('not-found', `${repoDesignation}: revision ${revision} is not in the Hub cache (${hubCacheDir(options.cacheDir, options.env ?? process.env)}) and HF_HUB_OFFLINE is set, so nothing is downloaded`);
  }
  const files: PulledFile[] = [];
  const walk = (dir: string, rel: string): void => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const r = rel === '' ? e.name : `${rel}/${e.name}`;
      const abs = path.join(dir, e.name);
      if (e.isDirectory()) {
        walk(abs, r);
        continue;
      }
      if (!filter(r)) continue;
      const blob = e.isSymbolicLink() ? path.basename(fs.readlinkSync(abs)) : '';
      const algorithm = SHA256_HEX.test(blob) ? 'sha256' : 'git-sha1';
      files.push({ path: r, size: fs.statSync(abs).size, blob, hash: { algorithm, hex: blob }, status: 'cached' });
    }
  };
  walk(found.snapshotDir, '');
  const repo = parseRepo(repoDesignation);
  return { snapshotDir: found.snapshotDir, storageDir: repoCachePaths(found.cacheDir, repo).storage, commit: found.commit, revision, files: files.sort((a, b) => (a.path < b.path ? -1 : 1)) };
}

/** Downloads `repo` at `revision` into the hub cache; see the top of this file. */
export async function hubPull(repoDesignation: string, options: HubPullOptions = {}): Promise<HubPullResult> {
  const endpointForErrors = options.endpoint ?? options.env?.['HF_ENDPOINT'] ?? process.env['HF_ENDPOINT'] ?? 'https://huggingface.co';
  const doing = `hub pull ${repoDesignation}`;
  try {
    const repo = parseRepo(repoDesignation);
    const revision = options.revision ?? 'main';
    validateRevision(revision, `repo ${repoLabel(repo)}`);
    const filter = pathFilter(options.include ?? [], options.exclude ?? []);
    const concurrency = options.concurrency ?? 4;
    if (!Number.isInteger(concurrency) || concurrency < 1) throw new HubError('bad-input', `${doing}: concurrency must be a positive integer, got ${concurrency}`);
    const env = options.env ?? process.env;
    if (hubOffline(env)) return offlineResult(repoDesignation, revision, filter, options);
    const ctx = hubCallContext(options);
    const cacheDir = hubCacheDir(options.cacheDir, env);

    const commit = await resolveCommit(ctx, repo, revision);
    if (COMMIT_SHA.test(revision) && commit !== revision) {
      throw new HubError('protocol', `repo ${repoLabel(repo)}: asked for commit ${revision} but ${ctx.endpoint} answered with commit ${commit}`);
    }
    const context = `repo ${repoLabel(repo)} at revision ${revision === commit ? commit : `${revision} (${commit})`}`;
    const checker = new ListingChecker(context, filter);
    for await (const e of listTree(repo, commit, {
      endpoint: ctx.endpoint, fetch: ctx.fetch, context,
      maxEntries: options.maxListEntries ?? DEFAULT_MAX_LIST_ENTRIES, maxPages: options.maxListPages ?? DEFAULT_MAX_LIST_PAGES,
    })) checker.add(e);
    const selected = checker.finish();
    if (selected.length === 0 && (options.include?.length ?? 0) > 0) {
      throw new HubError('not-found', `${context}: no file matches --include ${options.include!.map((g) => JSON.stringify(g)).join(' ')} (the repo has ${checker.total} files)`);
    }
    options.onProgress?.({ type: 'resolved', repo: repoLabel(repo), revision, commit, files: selected.length, bytes: selected.reduce((s, f) => s + f.size, 0) });

    // Everything the server said has been checked: from here on we write.
    const paths = repoCachePaths(cacheDir, repo);
    const snapshotDir = path.join(paths.snapshots, commit);
    const targets = selected.map((f) => ({ file: f, link: snapshotFilePath(snapshotDir, f.path, context) }));
    fs.mkdirSync(paths.blobs, { recursive: true });
    fs.mkdirSync(snapshotDir, { recursive: true });

    const pulled = new Map<string, PulledFile>();
    await runPool(targets, concurrency, async ({ file, link }) => {
      const blobPath = path.join(paths.blobs, file.expected.hex);
      const label = `file ${file.path} of ${context}`;
      const status = await ensureBlob(blobPath, async () => {
        const cached = async (): Promise<boolean> => {
          let existing: fs.Stats | undefined;
          try {
            existing = fs.lstatSync(blobPath);
          } catch {
            return false;
          }
          if (existing.isFile() && existing.size === file.size) {
            if (!options.verify) {
              options.onProgress?.({ type: 'file', path: file.path, state: 'cached', bytes: file.size, total: file.size });
              return true;
            }
            const actual = await hashFile(blobPath, file.expected.algorithm);
            if (actual === file.expected.hex) {
              options.onProgress?.({ type: 'file', path: file.path, state: 'verified', bytes: file.size, total: file.size });
              return true;
            }
            options.onWarning?.(`${blobPath}: cached blob of ${label} fails verification (${hashName(file.expected.algorithm)} ${actual}, expected ${file.expected.hex}); downloading it again`);
          }
          fs.rmSync(blobPath, { force: true, recursive: true }); // wrong size, not a regular file, or corrupt
          return false;
        };
        if (await cached()) return 'cached';
        const lockPath = path.join(cacheDir, '.locks', repoFolderName(repo), `${file.expected.hex}.lock`);
        const lock = await waitLock(lockPath, `moe-tune hub pull ${repoLabel(repo)}`, `blob ${file.expected.hex} of ${label}`, {
          timeoutMs: options.lockTimeoutMs ?? 600_000,
          onWait: (owner) => options.onWarning?.(`${label}: another process${owner ? ` (pid ${owner.pid})` : ''} is downloading this blob; waiting for it`),
        });
        try {
          if (await cached()) return 'cached'; // the other process finished it
          const info = await fileDownloadInfo({ repo: libraryRepo(repo), path: encodeRepoPath(file.path), revision: commit, hubUrl: ctx.endpoint, fetch: ctx.fetch });
          if (info === null) throw new HubError('not-found', `not found: ${label} on ${ctx.endpoint}`);
          if (info.size !== file.size) {
            throw new HubError('protocol', `${label}: ${ctx.endpoint} reports ${info.size} bytes but the file list says ${file.size}`);
          }
          const etag = normalizeEtag(info.etag).toLowerCase();
          const etagIsContentHash = file.expected.algorithm === 'sha256' ? SHA256_HEX.test(etag) : COMMIT_SHA.test(etag);
          if (etagIsContentHash && etag !== file.expected.hex) {
            throw new HubError('protocol', `${label}: the server's ETag ${etag} disagrees with the file list's ${file.expected.algorithm} ${file.expected.hex}`);
          }
          options.onProgress?.({ type: 'file', path: file.path, state: 'start', bytes: 0, total: file.size });
          const res = await downloadBlob({
            url: info.url,
            fetch: ctx.fetch,
            blobPath,
            size: file.size,
            expected: file.expected,
            label,
            policy: ctx.policy,
            sleep: ctx.sleep,
            random: ctx.random,
            onBytes: (bytes) => options.onProgress?.({ type: 'file', path: file.path, state: 'bytes', bytes, total: file.size }),
            ...(options.onWarning ? { onWarning: options.onWarning } : {}),
          });
          options.onProgress?.({ type: 'file', path: file.path, state: 'done', bytes: file.size, total: file.size });
          return res.resumedFrom > 0 ? 'resumed' : 'downloaded';
        } finally {
          lock.release();
        }
      });
      linkSnapshotFile(blobPath, link);
      pulled.set(file.path, { path: file.path, size: file.size, blob: file.expected.hex, hash: file.expected, status });
    });

    if (revision !== commit) writeRef(paths, revision, commit, context);
    return {
      snapshotDir,
      storageDir: paths.storage,
      commit,
      revision,
      files: selected.map((f) => pulled.get(f.path)!),
    };
  } catch (err) {
    throw asHubError(err, doing, endpointForErrors);
  }
}
