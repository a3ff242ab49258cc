/**
 * What every Hub verb sets up first (endpoint, token, the wrapped fetch) and how it reports failures: anything
 * thrown inside (our HubErrors, the library's HubApiError / TypeError, Node errors) leaves as one redacted HubError
 * line that names the endpoint.
 */
import { resolveEndpoint, resolveToken, type Env } from './auth.js';
import { HubError, describeThrown } from './hub-error.js';
import { createHubFetch, maxRetryAfterFromEnv, resolveTimeoutMs, retryPolicy, realSleep, type RetryEvent, type RetryPolicy } from './http.js';

/** Options shared by every verb. */
export interface HubCallOptions {
  /** Hub URL (default: HF_ENDPOINT, else https://huggingface.co). */
  endpoint?: string;
  /** Access token (default: HF_TOKEN, HUGGING_FACE_HUB_TOKEN, then the token file). Never printed. */
  token?: string;
  /** The underlying fetch (default: globalThis.fetch); wrapped with auth, retries and clear errors. */
  fetch?: typeof fetch;
  /** Environment to read HF_* variables from (default: process.env). */
  env?: Env;
  /** Retry policy for 429 / 5xx / network errors (default: 5 tries, 0.5 s doubling, jittered). */
  retry?: Partial<RetryPolicy>;
  /** Called before each retry (to print "retrying ..." lines). */
  onRetry?: (event: RetryEvent) => void;
  /** Waits between tries (default: setTimeout). */
  sleep?: (ms: number) => Promise<void>;
  /** Jitter source (default: Math.random). */
  random?: () => number;
  /** Connect and idle timeout in ms (default: HF_HUB_DOWNLOAD_TIMEOUT seconds, else 10 s). */
  timeoutMs?: number;
}

export interface HubCallContext {
  endpoint: string;
  token: string | undefined;
  /** Where the token came from ('HF_TOKEN', a file path, ...), safe to print. */
  tokenSource: string | undefined;
  fetch: typeof fetch;
  policy: RetryPolicy;
  sleep: (ms: number) => Promise<void>;
  random: () => number;
}

export function hubCallContext(o: HubCallOptions): HubCallContext {
  const env = o.env ?? process.env;
  const endpoint = resolveEndpoint(o.endpoint, env);
  const resolved = resolveToken(o.token, env);
  const envCap = maxRetryAfterFromEnv(env);
  const policy = retryPolicy({ ...(envCap === undefined ? {} : { maxRetryAfterMs: envCap }), ...o.retry });
  const timeoutMs = resolveTimeoutMs(o.timeoutMs, env);
  const sleep = o.sleep ?? realSleep;
  const random = o.random ?? Math.random;
  const fetch = createHubFetch({ endpoint, token: resolved?.token, fetch: o.fetch, retry: policy, sleep, random, onRetry: o.onRetry, timeoutMs });
  return { endpoint, token: resolved?.token, tokenSource: resolved?.source, fetch, policy, sleep, random };
}

/** Re-throws anything as a one-line HubError; `doing` says what was being done (e.g. "pull org/name"). */
export function asHubError(err: unknown, doing: string, endpoint: string): HubError {
  if (err instanceof HubError) return err;
  const e = err as { name?: string; statusCode?: unknown; url?: unknown };
  if (err instanceof Error && typeof e.statusCode === 'number') {
    // the library's HubApiError: message is the server's text plus "URL: ..."; drop the URL (may carry a query)
    const text = describeThrown(err).replace(/\.?\s*URL: \S+.*$/, '');
    return new HubError('protocol', `${doing}: ${endpoint} answered HTTP ${e.statusCode}: ${text}`, e.statusCode);
  }
  if (err instanceof TypeError && !/fetch failed/i.test(err.message)) {
    return new HubError('bad-input', `${doing}: ${describeThrown(err)}`);
  }
  if (err instanceof Error && err.name === 'InvalidApiResponseFormatError') {
    return new HubError('protocol', `${doing}: unusable response from ${endpoint}: ${describeThrown(err)}`);
  }
  return new HubError('protocol', `${doing}: ${describeThrown(err)}`);
}
