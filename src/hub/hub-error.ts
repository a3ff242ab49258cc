/**
 * The one error type the Hub client throws: a single line saying what failed and what to do, with every known
 * secret (and anything that looks like a Hugging Face token) masked. `kind` lets callers branch without parsing
 * the text; `status` is the HTTP status when one was involved.
 */
import { oneLine } from '../io/file-format-error.js';

export type HubErrorKind =
  | 'auth' // 401: missing or rejected token
  | 'forbidden' // 403: the token lacks the right
  | 'not-found' // 404: repo, revision or file missing
  | 'rate-limited' // 429 after every retry
  | 'server' // 5xx after every retry
  | 'network' // connection failures after every retry, interrupted downloads
  | 'integrity' // a download's hash or size does not match
  | 'unsafe-path' // a remote name that would escape the cache directory
  | 'protocol' // a response the client cannot use
  | 'bad-input'; // a bad argument (repo id, revision, glob, directory, missing token)

/** Secrets to mask in every message (tokens the client was given); see `registerSecret`. */
const secrets = new Set<string>();

/** Things shaped like Hugging Face user / org / app tokens. */
const TOKEN_SHAPE = /\b(hf|api|api_org|hf_app)_[A-Za-z0-9]{8,}\b/g;

/** Remembers `secret` so that every later HubError (and `redactSecrets`) masks it. Short strings are ignored. */
export function registerSecret(secret: string | undefined): void {
  if (secret !== undefined && secret.length >= 4) secrets.add(secret);
}

/** `text` with every registered secret and every token-shaped word replaced by `<redacted>`. */
export function redactSecrets(text: string): string {
  let out = text;
  for (const s of secrets) out = out.split(s).join('<redacted>');
  return out.replace(TOKEN_SHAPE, '<redacted>');
}

export class HubError extends Error {
  readonly kind: HubErrorKind;
  readonly status: number | undefined;

  constructor(kind: HubErrorKind, message: string, status?: number) {
    super(redactSecrets(oneLine(message)));
    this.name = 'HubError';
    this.kind = kind;
    this.status = status;
  }
}

/** A short, one-line, redacted rendering of any thrown value (for wrapping causes into HubError messages). */
export function describeThrown(err: unknown): string {
  if (err instanceof Error) {
    const cause = (err as Error & { cause?: unknown }).cause;
    const causeText =
      cause instanceof Error
        ? `${(cause as NodeJS.ErrnoException).code ?? cause.name}: ${cause.message}`
        : cause === undefined
          ? ''
          : String(cause);
    const text = causeText !== '' && !err.message.includes(causeText) ? `${err.message} (${causeText})` : err.message;
    return redactSecrets(oneLine(text));
  }
  return redactSecrets(oneLine(String(err)));
}
