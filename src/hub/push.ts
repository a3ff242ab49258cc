/**
 * `hubPush`: uploads a model or adapter directory to a Hub repo in one commit, creating the repo when it does not
 * exist (an existing repo is fine) and writing the model card as README.md when one is given.
 *
 * Protocol (via @huggingface/hub's commit, with our fetch): create repo, preupload (the server decides which
 * files go to LFS: large or binary ones), LFS batch + PUT of each new LFS object to its pre-signed URL, then the
 * commit with small files inline. Every file of the directory is uploaded, except `.git/`, `.cache/` and our own
 * temp files. Symlinked files are followed only when they stay inside the directory (or, for a pulled snapshot
 * `.../models--org--name/snapshots/<sha>`, point into that repo's `blobs/`); a link leading elsewhere is refused,
 * naming it. Every file is scanned (streaming, any size) for the token and its base64 forms (secret-scan.ts) and
 * refused, naming it, so a token can never be published by mistake.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { commitIter, createRepo, whoAmI, type CommitOperation, type CommitOutput } from '@huggingface/hub';
import { HubError } from './hub-error.js';
import { asHubError, hubCallContext, type HubCallOptions } from './hub-call.js';
import { libraryRepo, parseRepo, repoLabel } from './repo-id.js';
import { validateRemotePath, validateRevision } from './remote-path.js';
import { fileHoldsSecret, secretNeedles, textHoldsSecret } from './secret-scan.js';

export interface HubPushOptions extends HubCallOptions {
  /** Create the repo private (only when it is created; an existing repo keeps its visibility). */
  private?: boolean;
  /** Commit title (default: "Upload <n> files with moe-tune"). */
  commitMessage?: string;
  /** Branch to commit to (default "main"). */
  branch?: string;
  /** README.md content (e.g. from renderModelCard); replaces a README.md in the directory. */
  modelCard?: string;
  onProgress?: (event: HubPushProgress) => void;
}

export type HubPushProgress =
  | { type: 'repo'; repo: string; created: boolean }
  | { type: 'phase'; phase: 'preuploading' | 'uploadingLargeFiles' | 'committing' }
  | { type: 'file'; path: string; state: 'hashing' | 'uploading' | 'error'; progress: number };

export interface HubPushResult {
  /** `org/name` (the namespace filled in from the token's user when it was omitted). */
  repo: string;
  /** `<endpoint>/<repo>` */
  url: string;
  created: boolean;
  commit: string;
  commitUrl: string;
  /** Repo paths uploaded, sorted. */
  files: string[];
}

export interface LocalFile {
  /** POSIX path relative to the directory. */
  path: string;
  abs: string;
  size: number;
}

const SKIP_DIRS = new Set(['.git', '.cache']);
/** Temp names written by src/io/atomic.ts and src/hub/cache-layout.ts. */
const TEMP_NAME = /^\..+\.(tmp|old|link)-[0-9]+-[0-9a-f]+$|\.incomplete$/;

/** Where symlinks of the pushed directory may point: inside it, or for a Hub cache snapshot, its repo's blobs. */
function allowedLinkRoots(realRoot: string): string[] {
  const roots = [realRoot];
  const snapshots = path.dirname(realRoot);
  if (path.basename(snapshots) === 'snapshots' && /^models--|^datasets--/.test(path.basename(path.dirname(snapshots)))) {
    roots.push(path.join(path.dirname(snapshots), 'blobs'));
  }
  return roots;
}

function inside(p: string, root: string): boolean {
  const rel = path.relative(root, p);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/** Lists the files to upload under `dir` (sorted), following symlinked files that stay inside it, not symlinked directories. */
export function listLocalFiles(dir: string): LocalFile[] {
  const root = path.resolve(dir);
  let st: fs.Stats;
  try {
    st = fs.statSync(root);
  } catch {
    throw new HubError('bad-input', `${root}: directory to push does not exist`);
  }
  if (!st.isDirectory()) throw new HubError('bad-input', `${root}: expected a model or adapter directory to push, found a file`);
  const linkRoots = allowedLinkRoots(fs.realpathSync(root));
  const out: LocalFile[] = [];
  const walk = (absDir: string, relDir: string, depth: number): void => {
    if (depth > 32) throw new HubError('bad-input', `${absDir}: directory nesting deeper than 32 levels`);
    for (const entry of fs.readdirSync(absDir, { withFileTypes: true })) {
      const rel = relDir === '' ? entry.name : `${relDir}/${entry.name}`;
      const abs = path.join(absDir, entry.name);
      if (entry.isDirectory()) {
        if ((relDir === '' && SKIP_DIRS.has(entry.name)) || /^\..+\.tmp-/.test(entry.name)) continue; // .git, .cache, atomic-write temp dirs
        walk(abs, rel, depth + 1);
        continue;
      }
      if (TEMP_NAME.test(entry.name)) continue;
      if (entry.isSymbolicLink()) {
        let real: string;
        try {
          real = fs.realpathSync(abs);
        } catch {
          throw new HubError('bad-input', `${abs}: broken symlink in the directory to push`);
        }
        if (!linkRoots.some((r) => inside(real, r))) {
          throw new HubError('bad-input', `${abs}: symlink to ${real}, outside the directory being pushed; refusing to upload it (copy the file in if it belongs to the upload)`);
        }
      }
      let target: fs.Stats;
      try {
        target = fs.statSync(abs);
      } catch {
        throw new HubError('bad-input', `${abs}: broken symlink in the directory to push`);
      }
      if (!target.isFile()) continue; // symlinked directories, sockets, ...
      validateRemotePath(rel, root);
      out.push({ path: rel, abs, size: target.size });
    }
  };
  walk(root, '', 0);
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** Throws if a file contains `token` (or a base64 form of it), naming the file but not the token. */
function refuseFilesHoldingToken(files: readonly LocalFile[], token: string): void {
  const needles = secretNeedles(token);
  for (const f of files) {
    const form = fileHoldsSecret(f.abs, needles);
    if (form !== null) {
      throw new HubError('bad-input', `${f.abs}: refusing to upload a file that contains your Hugging Face token${form === 'base64' ? ' (base64-encoded)' : ''}; remove it from the directory`);
    }
  }
}

/** Uploads `dir` to `repoDesignation`; see the top of this file. */
export async function hubPush(dir: string, repoDesignation: string, options: HubPushOptions = {}): Promise<HubPushResult> {
  const endpointForErrors = options.endpoint ?? options.env?.['HF_ENDPOINT'] ?? process.env['HF_ENDPOINT'] ?? 'https://huggingface.co';
  const doing = `hub push ${dir} ${repoDesignation}`;
  try {
    const ctx = hubCallContext(options);
    const parsed = parseRepo(repoDesignation);
    if (parsed.type !== 'model') throw new HubError('bad-input', `${doing}: only model repos can be pushed (got ${repoLabel(parsed)})`);
    const branch = options.branch ?? 'main';
    validateRevision(branch, `repo ${repoLabel(parsed)}`);
    const local = listLocalFiles(dir).filter((f) => !(options.modelCard !== undefined && f.path === 'README.md'));
    if (local.length === 0 && options.modelCard === undefined) throw new HubError('bad-input', `${path.resolve(dir)}: nothing to push (no files)`);
    if (ctx.token === undefined) {
      throw new HubError('auth', `pushing to ${ctx.endpoint} needs a token: set HF_TOKEN (or log in with \`huggingface-cli login\`) to a token with write access`);
    }
    refuseFilesHoldingToken(local, ctx.token);
    if (options.modelCard !== undefined && textHoldsSecret(options.modelCard, secretNeedles(ctx.token)) !== null) {
      throw new HubError('bad-input', `${doing}: refusing to upload a model card that contains your Hugging Face token`);
    }

    // The token travels in our fetch's Authorization header (endpoint origin only), so the library gets none;
    // an empty accessToken satisfies its types and makes it add no header of its own.
    const noLibraryToken = { accessToken: '' };
    let repoId = parsed.id;
    if (!repoId.includes('/')) {
      const me = await whoAmI({ ...noLibraryToken, hubUrl: ctx.endpoint, fetch: ctx.fetch });
      repoId = `${me.name}/${repoId}`;
    }
    const repo = parseRepo(repoId);

    let created = true;
    try {
      await createRepo({
        ...noLibraryToken,
        repo: libraryRepo(repo),
        ...(options.private === undefined ? {} : { visibility: options.private ? ('private' as const) : ('public' as const) }),
        hubUrl: ctx.endpoint,
        fetch: ctx.fetch,
      });
    } catch (err) {
      if ((err as { statusCode?: unknown }).statusCode !== 409) throw err;
      created = false; // already exists
    }
    options.onProgress?.({ type: 'repo', repo: repo.id, created });

    const operations: CommitOperation[] = [];
    for (const f of local) operations.push({ operation: 'addOrUpdate', path: f.path, content: await fs.openAsBlob(f.abs) });
    if (options.modelCard !== undefined) {
      operations.push({ operation: 'addOrUpdate', path: 'README.md', content: new Blob([Buffer.from(options.modelCard, 'utf8')]) });
    }
    const paths = operations.map((o) => o.path).sort();

    const it = commitIter({
      repo: libraryRepo(repo),
      operations,
      title: options.commitMessage ?? `Upload ${operations.length} files with moe-tune`,
      branch,
      hubUrl: ctx.endpoint,
      fetch: ctx.fetch,
      useXet: false,
    });
    let step = await it.next();
    while (step.done !== true) {
      const ev = step.value;
      if (ev.event === 'phase') options.onProgress?.({ type: 'phase', phase: ev.phase });
      else options.onProgress?.({ type: 'file', path: ev.path, state: ev.state, progress: ev.progress });
      step = await it.next();
    }
    const out: CommitOutput | undefined = step.value;
    if (out === undefined || typeof out.commit?.oid !== 'string') {
      throw new HubError('protocol', `${doing}: ${ctx.endpoint} did not return the new commit`);
    }
    return {
      repo: repo.id,
      url: `${ctx.endpoint}/${repo.id}`,
      created,
      commit: out.commit.oid,
      commitUrl: out.commit.url,
      files: paths,
    };
  } catch (err) {
    throw asHubError(err, doing, endpointForErrors);
  }
}
