/**
 * Resumable, verified download of one file into a cache blob, the way the Python client does it: bytes go to
 * `<blob>.incomplete`; a later try (in this call, after a dropped connection, or in a later pull) continues from the
 * partial file's size with `Range: bytes=<size>-`; the finished file is hashed (sha256 for LFS files, git blob sha1
 * for regular ones) and only then renamed to the blob name. A hash or size mismatch deletes the partial file and is
 * an `integrity` HubError; a server that ignores Range (200 instead of 206) restarts the file from byte 0.
 */
import * as fs from 'node:fs';
import { HubError, describeThrown } from './hub-error.js';
import { hashFile, hashName, type ExpectedHash } from './content-hash.js';
import { backoffDelayMs, type RetryPolicy } from './http.js';

export interface DownloadBlobOptions {
  /** The file's download URL (its `resolve` URL; redirects are followed by `fetch`). */
  url: string;
  /** A fetch from createHubFetch (auth, status retries, clear errors). */
  fetch: typeof fetch;
  /** Final blob path; the partial file is `<blobPath>.incomplete`. */
  blobPath: string;
  size: number;
  expected: ExpectedHash;
  /** For messages: e.g. `file model.safetensors of org/name at revision <sha>`. */
  label: string;
  policy: RetryPolicy;
  sleep: (ms: number) => Promise<void>;
  random?: () => number;
  /** Called as bytes arrive: bytes now in the partial file, of `size`. */
  onBytes?: (bytes: number) => void;
  /** Warnings (a planted link at the partial file's name was removed). */
  onWarning?: (line: string) => void;
}

export interface DownloadBlobResult {
  /** Bytes already on disk when the download (re)started, i.e. the resume offset of the first request. */
  resumedFrom: number;
  /** Requests for the file's bytes that were made. */
  requests: number;
}

/**
 * Size of the partial file, never following a link: anything at that name other than a regular file (a symlink
 * planted to make us append to another file, a directory, a FIFO) is removed (the link itself, not its target)
 * and the download starts from byte 0.
 */
function sizeOf(file: string, onUnsafe?: (what: string) => void): number {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
  if (st.isFile()) return st.size;
  const what = st.isSymbolicLink() ? 'a symlink' : st.isDirectory() ? 'a directory' : 'not a regular file';
  onUnsafe?.(what);
  fs.rmSync(file, { recursive: true, force: true });
  return 0;
}

/** Open flags for the partial file that refuse to follow a symlink put there after our check. */
function partialFlags(append: boolean): number {
  const c = fs.constants;
  return c.O_WRONLY | c.O_CREAT | (append ? c.O_APPEND : c.O_TRUNC) | (c.O_NOFOLLOW ?? 0);
}

function parseContentRange(value: string | null): { start: number; total: number } | undefined {
  const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(value?.trim() ?? '');
  if (m === null) return undefined;
  return { start: Number(m[1]), total: m[3] === '*' ? -1 : Number(m[3]) };
}

/** Streams a response body onto the end of `file`, reporting the running size. */
async function appendBody(res: Response, file: string, start: number, onBytes?: (bytes: number) => void): Promise<void> {
  const fh = await fs.promises.open(file, partialFlags(start !== 0), 0o644);
  let written = start;
  try {
    if (res.body === null) return;
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      await fh.write(chunk);
      written += chunk.byteLength;
      onBytes?.(written);
    }
  } finally {
    await fh.close();
  }
}

export async function downloadBlob(o: DownloadBlobOptions): Promise<DownloadBlobResult> {
  const partial = `${o.blobPath}.incomplete`;
  let resumedFrom = -1;
  let requests = 0;
  let failures = 0;
  let lastReason = '';

  const unsafe = (what: string): void => o.onWarning?.(`${partial}: was ${what}, not a partial download; removed it (the link itself, never its target) and downloading ${o.label} from the start`);
  for (;;) {
    let offset = sizeOf(partial, unsafe);
    if (offset > o.size) {
      fs.rmSync(partial, { force: true });
      offset = 0;
    }
    if (resumedFrom < 0) resumedFrom = offset;
    if (offset === o.size) {
      if (o.size === 0) fs.closeSync(fs.openSync(partial, partialFlags(false), 0o644));
      break;
    }
    if (failures >= o.policy.maxAttempts) {
      throw new HubError(
        'network',
        `download of ${o.label} interrupted after ${offset} of ${o.size} bytes (${failures} ${failures === 1 ? 'try' : 'tries'}; last: ${lastReason}); the partial file is kept, run the pull again to resume`,
      );
    }

    const headers: Record<string, string> = { 'Accept-Encoding': 'identity' };
    if (offset > 0) headers['Range'] = `bytes=${offset}-`;
    requests++;
    const res = await o.fetch(o.url, { headers });

    let start = offset;
    if (res.status === 206) {
      const range = parseContentRange(res.headers.get('content-range'));
      if (range === undefined || range.start !== offset || (range.total >= 0 && range.total !== o.size)) {
        await res.body?.cancel().catch(() => undefined);
        fs.rmSync(partial, { force: true });
        throw new HubError(
          'protocol',
          `${o.label}: the server answered the range request bytes=${offset}- with Content-Range "${res.headers.get('content-range') ?? ''}"; expected bytes ${offset}-${o.size - 1}/${o.size}; the partial file was deleted`,
        );
      }
    } else if (res.status === 200) {
      start = 0; // full body: the server ignored (or we did not send) Range
    } else if (res.status === 416) {
      await res.body?.cancel().catch(() => undefined);
      fs.rmSync(partial, { force: true });
      failures++;
      lastReason = 'HTTP 416 (range not satisfiable)';
      continue;
    } else {
      await res.body?.cancel().catch(() => undefined);
      throw new HubError('protocol', `${o.label}: unexpected HTTP ${res.status} for the file download`, res.status);
    }

    try {
      await appendBody(res, partial, start, o.onBytes);
    } catch (err) {
      failures++;
      lastReason = describeThrown(err);
      if (failures < o.policy.maxAttempts) await o.sleep(backoffDelayMs(failures, o.policy, o.random));
      continue;
    }
    const got = sizeOf(partial, unsafe);
    if (got < o.size) {
      failures++;
      lastReason = `the body ended after ${got} of ${o.size} bytes`;
      if (failures < o.policy.maxAttempts) await o.sleep(backoffDelayMs(failures, o.policy, o.random));
      continue;
    }
    if (got > o.size) {
      fs.rmSync(partial, { force: true });
      throw new HubError('integrity', `${o.label}: the server sent ${got} bytes, expected ${o.size}; the partial file was deleted, run the pull again`);
    }
  }

  const actual = await hashFile(partial, o.expected.algorithm);
  if (actual !== o.expected.hex) {
    fs.rmSync(partial, { force: true });
    throw new HubError(
      'integrity',
      `${o.label}: downloaded content fails verification: ${hashName(o.expected.algorithm)} is ${actual}, expected ${o.expected.hex}; the corrupt download was deleted, run the pull again`,
    );
  }
  fs.renameSync(partial, o.blobPath);
  return { resumedFrom, requests };
}
