/**
 * The fetch every Hub call goes through (injected into @huggingface/hub via its `fetch` option):
 *
 * - adds `Authorization: Bearer <token>` to requests for the endpoint's origin only, and strips any Authorization
 *   header from requests to other origins (CDN and storage URLs are pre-signed);
 * - follows redirects itself (at most 10), so the token never follows a redirect to another origin;
 * - retries 429 / 500 / 502 / 503 / 504 and network errors with exponential backoff and jitter (5 tries by
 *   default), honouring Retry-After (capped), unless the request body cannot be replayed;
 * - turns 401 / 403 / 404 into one-line HubErrors naming the endpoint, repo, revision and file; gives up on
 *   429 / 5xx / network failures with a HubError once the tries are spent. Other statuses are returned as they
 *   are for the caller (or the library) to handle;
 * - times out, like huggingface_hub's HF_HUB_DOWNLOAD_TIMEOUT (default 10 s): a server that does not answer
 *   (connect and headers) within the timeout is a network failure (retried), and a body that stalls for longer
 *   than the timeout between two chunks errors the body stream (the download layer resumes it with a Range);
 * - a Retry-After longer than the cap (default 120 s, HF_HUB_MAX_RETRY_AFTER in seconds) is not waited out:
 *   the call fails at once with a message saying how long the server asked to wait.
 */
import { HubError, describeThrown, registerSecret } from './hub-error.js';

export interface RetryPolicy {
  /** Tries in all, the first included (>= 1). */
  maxAttempts: number;
  /** Backoff before the second try; doubles each time. */
  baseDelayMs: number;
  /** Cap on one backoff delay. */
  maxDelayMs: number;
  /** Cap on a server's Retry-After. */
  maxRetryAfterMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { maxAttempts: 5, baseDelayMs: 500, maxDelayMs: 20_000, maxRetryAfterMs: 120_000 };

/** Default connect / idle timeout, as huggingface_hub's HF_HUB_DOWNLOAD_TIMEOUT (10 s). */
export const DEFAULT_TIMEOUT_MS = 10_000;

export const RETRYABLE_STATUS: ReadonlySet<number> = new Set([429, 500, 502, 503, 504]);

export interface RetryEvent {
  /** What was being fetched, for messages (never includes query strings or tokens). */
  what: string;
  /** The try that failed (1-based). */
  attempt: number;
  delayMs: number;
  reason: string;
}

export interface HubFetchOptions {
  endpoint: string;
  token?: string | undefined;
  /** The underlying fetch (default: globalThis.fetch). */
  fetch?: typeof fetch | undefined;
  retry?: Partial<RetryPolicy> | undefined;
  /** Waits between tries (tests inject an instant one). */
  sleep?: ((ms: number) => Promise<void>) | undefined;
  /** Uniform [0, 1) source for jitter. */
  random?: (() => number) | undefined;
  onRetry?: ((event: RetryEvent) => void) | undefined;
  /** Connect (until the response headers) and idle (between body chunks) timeout; default DEFAULT_TIMEOUT_MS. */
  timeoutMs?: number | undefined;
}

/** Statuses whose responses have no body (a Response cannot be built around one). */
const NULL_BODY = new Set([101, 103, 204, 205, 304]);

/**
 * `res` with its body wrapped so that a gap of more than `timeoutMs` between chunks aborts the request
 * (`abort`) and errors the stream with a HubError naming `what`.
 */
function withIdleTimeout(res: Response, timeoutMs: number, abort: (reason: Error) => void, what: string): Response {
  if (res.body === null || NULL_BODY.has(res.status)) return res;
  const reader = res.body.getReader();
  const stalled = (): HubError => new HubError('network', `no data from the server for ${timeoutMs / 1000} s while reading ${what} (the timeout is HF_HUB_DOWNLOAD_TIMEOUT or the timeout option)`);
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        abort(stalled());
      }, timeoutMs);
      try {
        const { done, value } = await reader.read();
        if (done) controller.close();
        else controller.enqueue(value);
      } catch (err) {
        controller.error(timedOut ? stalled() : err);
      } finally {
        clearTimeout(timer);
      }
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  });
  const wrapped = new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
  Object.defineProperty(wrapped, 'url', { value: res.url });
  return wrapped;
}

/** The timeout from the option, else HF_HUB_DOWNLOAD_TIMEOUT (seconds), else 10 s. */
export function resolveTimeoutMs(option: number | undefined, env: Readonly<Record<string, string | undefined>> = process.env): number {
  if (option !== undefined) {
    if (!Number.isFinite(option) || option <= 0) throw new HubError('bad-input', `timeout must be a positive number of milliseconds, got ${option}`);
    return option;
  }
  const raw = env['HF_HUB_DOWNLOAD_TIMEOUT'];
  if (raw === undefined || raw.trim() === '') return DEFAULT_TIMEOUT_MS;
  const s = Number(raw);
  if (!Number.isFinite(s) || s <= 0) throw new HubError('bad-input', `HF_HUB_DOWNLOAD_TIMEOUT must be a positive number of seconds, got "${raw}"`);
  return s * 1000;
}

/** The Retry-After cap from HF_HUB_MAX_RETRY_AFTER (seconds), when set. */
export function maxRetryAfterFromEnv(env: Readonly<Record<string, string | undefined>> = process.env): number | undefined {
  const raw = env['HF_HUB_MAX_RETRY_AFTER'];
  if (raw === undefined || raw.trim() === '') return undefined;
  const s = Number(raw);
  if (!Number.isFinite(s) || s < 0) throw new HubError('bad-input', `HF_HUB_MAX_RETRY_AFTER must be a non-negative number of seconds, got "${raw}"`);
  return s * 1000;
}

export function retryPolicy(over: Partial<RetryPolicy> | undefined): RetryPolicy {
  const p = { ...DEFAULT_RETRY, ...over };
  if (!Number.isInteger(p.maxAttempts) || p.maxAttempts < 1 || p.maxAttempts > 100) {
    throw new HubError('bad-input', `retry.maxAttempts must be an integer in [1, 100], got ${p.maxAttempts}`);
  }
  return p;
}

export const realSleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Exponential backoff with jitter: base * 2^(failures-1), capped, scaled by a factor in [0.5, 1). */
export function backoffDelayMs(failures: number, policy: RetryPolicy, random: () => number = Math.random): number {
  const exp = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, failures - 1));
  return Math.round(exp * (0.5 + 0.5 * random()));
}

/** Retry-After as milliseconds (delta-seconds or an HTTP date), or undefined when absent / unparsable. */
export function parseRetryAfter(value: string | null, now: number = Date.now()): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  const v = value.trim();
  if (/^\d+(\.\d+)?$/.test(v)) return Math.round(Number(v) * 1000);
  const date = Date.parse(v);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** Readable description of a Hub URL: which repo / revision / file / operation, without query strings. */
export function describeHubUrl(url: URL, endpoint: string): string {
  const ep = new URL(endpoint);
  if (url.origin !== ep.origin) return `a storage request to ${url.origin}`;
  const prefix = ep.pathname.replace(/\/+$/, '');
  const rel = url.pathname.startsWith(prefix) ? url.pathname.slice(prefix.length) : url.pathname;
  const seg = rel.split('/').filter((s) => s !== '').map((s) => {
    try {
      return decodeURIComponent(s);
    } catch {
      return s;
    }
  });
  const repoOf = (parts: string[]): string => parts.join('/');
  if (seg[0] === 'api') {
    if (seg[1] === 'repos' && seg[2] === 'create') return 'repo creation';
    if (seg[1] === 'whoami-v2') return 'the token check (whoami)';
    if (seg[1] === 'models' || seg[1] === 'datasets' || seg[1] === 'spaces') {
      const kinds = ['revision', 'tree', 'preupload', 'commit', 'paths-info'];
      const k = seg.findIndex((s, i) => i >= 3 && kinds.includes(s));
      if (k > 0) {
        const repo = (seg[1] === 'models' ? '' : `${seg[1]}/`) + repoOf(seg.slice(2, k));
        const rev = seg[k + 1];
        const revText = rev === undefined ? '' : ` revision ${rev}`;
        switch (seg[k]) {
          case 'revision':
            return `repo ${repo}${revText}`;
          case 'tree':
            return `the file list of repo ${repo}${revText}`;
          case 'preupload':
          case 'commit':
            return `the upload to repo ${repo}${revText === '' ? '' : ` branch ${rev}`}`;
          default:
            return `repo ${repo}`;
        }
      }
      return `repo ${repoOf(seg.slice(2))}`;
    }
    return `the API call ${url.pathname}`;
  }
  const r = seg.indexOf('resolve');
  if (r > 0) {
    const repo = repoOf(seg.slice(0, r));
    return `file ${seg.slice(r + 2).join('/')} of repo ${repo} at revision ${seg[r + 1] ?? '?'}`;
  }
  const git = seg.findIndex((s) => s.endsWith('.git'));
  if (git >= 0) return `the LFS upload to repo ${repoOf([...seg.slice(0, git), seg[git]!.slice(0, -4)])}`;
  return url.pathname;
}

/** Reads at most `limit` characters of a response body (for error messages), never throwing. */
async function bodySnippet(res: Response, limit = 200): Promise<string> {
  try {
    const text = (await res.text()).trim();
    let msg = text;
    if ((res.headers.get('content-type') ?? '').includes('json')) {
      try {
        const json = JSON.parse(text) as { error?: unknown; message?: unknown };
        const m = json.error ?? json.message;
        if (typeof m === 'string') msg = m;
      } catch {
        // not JSON after all
      }
    }
    msg = msg.replace(/\s+/g, ' ');
    return msg.length > limit ? `${msg.slice(0, limit)}...` : msg;
  } catch {
    return '';
  }
}

function requestUrl(input: string | URL | Request): URL {
  if (typeof input === 'string') return new URL(input);
  if (input instanceof URL) return new URL(input.href);
  return new URL(input.url);
}

function replayable(body: unknown): boolean {
  return (
    body === undefined ||
    body === null ||
    typeof body === 'string' ||
    body instanceof Blob ||
    body instanceof ArrayBuffer ||
    ArrayBuffer.isView(body) ||
    body instanceof URLSearchParams
  );
}

/** A request body big enough that sending it may take longer than the timeout. */
function largeBody(body: unknown): boolean {
  const big = 1 << 20;
  if (body instanceof Blob) return body.size > big;
  if (ArrayBuffer.isView(body)) return body.byteLength > big;
  if (body instanceof ArrayBuffer) return body.byteLength > big;
  return body instanceof ReadableStream;
}

/** Statuses whose redirect keeps method and body. */
const KEEP_METHOD = new Set([307, 308]);
const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/** Builds the fetch described at the top of this file. */
export function createHubFetch(options: HubFetchOptions): typeof fetch {
  const endpoint = options.endpoint;
  const endpointOrigin = new URL(endpoint).origin;
  const baseFetch = options.fetch ?? globalThis.fetch;
  const policy = retryPolicy(options.retry);
  const sleep = options.sleep ?? realSleep;
  const random = options.random ?? Math.random;
  const token = options.token;
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  registerSecret(token);

  const hubFetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    let url = requestUrl(input);
    const original = url;
    let method = (init?.method ?? (input instanceof Request ? input.method : 'GET')).toUpperCase();
    let body = init?.body ?? (input instanceof Request ? input.body : undefined);
    const baseHeaders = new Headers(init?.headers ?? (input instanceof Request ? input.headers : undefined));
    const canRetry = replayable(body);
    const signal = init?.signal ?? undefined;
    let failures = 0;
    let redirects = 0;

    for (;;) {
      const what = describeHubUrl(url, endpoint);
      const headers = new Headers(baseHeaders);
      headers.delete('authorization');
      const sameOrigin = url.origin === endpointOrigin;
      if (sameOrigin && token !== undefined) headers.set('authorization', `Bearer ${token}`);
      const passInit: RequestInit = { ...init, method, headers, redirect: 'manual' };
      if (body !== undefined && body !== null) passInit.body = body;
      else delete passInit.body;
      if ((passInit.body as unknown) instanceof ReadableStream) (passInit as { duplex?: string }).duplex = 'half';

      let res: Response;
      const ac = new AbortController();
      const onCallerAbort = (): void => ac.abort(signal?.reason);
      if (signal) {
        if (signal.aborted) throw signal.reason ?? new DOMException('aborted', 'AbortError');
        signal.addEventListener('abort', onCallerAbort, { once: true });
      }
      passInit.signal = ac.signal;
      let connectTimedOut = false;
      // uploads: the time to send a large body is not the server's silence, so only the response is timed
      const connectTimer = largeBody(passInit.body) ? undefined : setTimeout(() => {
        connectTimedOut = true;
        ac.abort(new HubError('network', `no response within ${timeoutMs / 1000} s`));
      }, timeoutMs);
      try {
        res = await baseFetch(url.href, passInit);
        res = withIdleTimeout(res, timeoutMs, (reason) => ac.abort(reason), what);
      } catch (err) {
        if (signal?.aborted === true || (!connectTimedOut && err instanceof Error && err.name === 'AbortError')) throw err;
        failures++;
        const reason = connectTimedOut ? `no response within ${timeoutMs / 1000} s (the timeout is HF_HUB_DOWNLOAD_TIMEOUT or the timeout option)` : describeThrown(err);
        if (!canRetry || failures >= policy.maxAttempts) {
          throw new HubError(
            'network',
            `network error contacting ${endpoint} for ${what} after ${failures} ${failures === 1 ? 'try' : 'tries'}: ${reason}`,
          );
        }
        const delayMs = backoffDelayMs(failures, policy, random);
        options.onRetry?.({ what, attempt: failures, delayMs, reason });
        await sleep(delayMs);
        continue;
      } finally {
        clearTimeout(connectTimer);
        signal?.removeEventListener('abort', onCallerAbort);
      }

      if (REDIRECTS.has(res.status) && res.headers.has('location')) {
        await res.body?.cancel().catch(() => undefined);
        if (++redirects > 10) throw new HubError('protocol', `too many redirects from ${endpoint} for ${describeHubUrl(original, endpoint)}`);
        url = new URL(res.headers.get('location')!, url);
        if (url.protocol !== 'http:' && url.protocol !== 'https:') {
          throw new HubError('protocol', `${endpoint} redirected ${describeHubUrl(original, endpoint)} to a non-http URL`);
        }
        if (!KEEP_METHOD.has(res.status) && method !== 'GET' && method !== 'HEAD') {
          method = 'GET';
          body = undefined;
        }
        continue;
      }

      if (RETRYABLE_STATUS.has(res.status)) {
        failures++;
        const retryAfter = parseRetryAfter(res.headers.get('retry-after'));
        if (!canRetry || failures >= policy.maxAttempts) {
          const said = await bodySnippet(res);
          const kind = res.status === 429 ? 'rate-limited' : 'server';
          const label = res.status === 429 ? 'rate limited by' : 'server error from';
          throw new HubError(
            kind,
            `${label} ${endpoint} (HTTP ${res.status}) for ${what} after ${failures} ${failures === 1 ? 'try' : 'tries'}${said === '' ? '' : `: ${said}`}`,
            res.status,
          );
        }
        if (retryAfter !== undefined && retryAfter > policy.maxRetryAfterMs) {
          const said = await bodySnippet(res);
          throw new HubError(
            res.status === 429 ? 'rate-limited' : 'server',
            `${endpoint} (HTTP ${res.status}) asked to retry ${what} after ${Math.round(retryAfter / 1000)} s (Retry-After), longer than the ${Math.round(policy.maxRetryAfterMs / 1000)} s this client waits (HF_HUB_MAX_RETRY_AFTER); try again later${said === '' ? '' : `: ${said}`}`,
            res.status,
          );
        }
        await res.body?.cancel().catch(() => undefined);
        const delayMs = retryAfter !== undefined ? retryAfter : backoffDelayMs(failures, policy, random);
        options.onRetry?.({ what, attempt: failures, delayMs, reason: retryAfter !== undefined ? `HTTP ${res.status}, server asked to wait ${(retryAfter / 1000).toFixed(1)} s` : `HTTP ${res.status}` });
        await sleep(delayMs);
        continue;
      }

      if (res.status === 401) {
        const said = await bodySnippet(res);
        const sent = sameOrigin && token !== undefined;
        throw new HubError(
          'auth',
          `authentication failed for ${endpoint} (HTTP 401 on ${what}): set HF_TOKEN (or log in with \`huggingface-cli login\`) to a valid token with access to this repo; ${
            sent ? 'the token sent was rejected' : 'no token was sent'
          }${said === '' ? '' : ` (server: ${said})`}`,
          401,
        );
      }
      if (res.status === 403) {
        const said = await bodySnippet(res);
        throw new HubError(
          'forbidden',
          `no permission for ${what} on ${endpoint} (HTTP 403): the token does not grant this access (pushing needs a write token; gated repos need their terms accepted)${
            said === '' ? '' : ` (server: ${said})`
          }`,
          403,
        );
      }
      if (res.status === 404) {
        const code = res.headers.get('x-error-code');
        const said = await bodySnippet(res);
        const detail =
          code === 'RepoNotFound'
            ? 'the repo does not exist (or is private and the token cannot see it)'
            : code === 'RevisionNotFound'
              ? 'the revision does not exist'
              : code === 'EntryNotFound'
                ? 'the file does not exist at this revision'
                : 'not found';
        throw new HubError('not-found', `not found: ${what} on ${endpoint} (HTTP 404): ${detail}${said === '' ? '' : ` (server: ${said})`}`, 404);
      }
      return res;
    }
  };
  return hubFetch as typeof fetch;
}
