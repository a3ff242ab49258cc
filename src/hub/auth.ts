/**
 * Where the Hub client gets its token, its endpoint and the Hugging Face home directory, following the Python
 * `huggingface_hub` conventions so both share one login:
 *
 * - token: the explicit option, else `HF_TOKEN`, else `HUGGING_FACE_HUB_TOKEN`, else the token file
 *   (`HF_TOKEN_PATH`, else `$HF_HOME/token`, where HF_HOME defaults to `$XDG_CACHE_HOME/huggingface` or
 *   `~/.cache/huggingface`);
 * - endpoint: the explicit option, else `HF_ENDPOINT`, else https://huggingface.co.
 *
 * The token is never printed: `ResolvedToken.source` says where it came from, every token handed out here is
 * registered for redaction (see hub-error.ts), and nothing in src/hub writes it to disk.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { HubError, registerSecret } from './hub-error.js';

export const DEFAULT_ENDPOINT = 'https://huggingface.co';

export type Env = Readonly<Record<string, string | undefined>>;

export interface ResolvedToken {
  token: string;
  /** Where it came from, safe to print: 'option', 'HF_TOKEN', 'HUGGING_FACE_HUB_TOKEN' or the token file's path. */
  source: string;
}

function nonEmpty(value: string | undefined): string | undefined {
  const v = value?.trim();
  return v === undefined || v === '' ? undefined : v;
}

/** `~` and `~/...` expanded against the home directory (HOME in `env`, else the OS's). */
export function expandHome(p: string, env: Env = process.env): string {
  if (p !== '~' && !p.startsWith('~/')) return p;
  const home = nonEmpty(env['HOME']) ?? os.homedir();
  return path.join(home, p.slice(1));
}

/** The Hugging Face home: `HF_HOME`, else `$XDG_CACHE_HOME/huggingface`, else `~/.cache/huggingface`. */
export function hfHomeDir(env: Env = process.env): string {
  const explicit = nonEmpty(env['HF_HOME']);
  if (explicit !== undefined) return path.resolve(expandHome(explicit, env));
  const xdg = nonEmpty(env['XDG_CACHE_HOME']);
  const cacheRoot = xdg !== undefined ? expandHome(xdg, env) : path.join(nonEmpty(env['HOME']) ?? os.homedir(), '.cache');
  return path.resolve(cacheRoot, 'huggingface');
}

/** The token file: `HF_TOKEN_PATH`, else `$HF_HOME/token`. */
export function tokenFilePath(env: Env = process.env): string {
  const explicit = nonEmpty(env['HF_TOKEN_PATH']);
  if (explicit !== undefined) return path.resolve(expandHome(explicit, env));
  return path.join(hfHomeDir(env), 'token');
}

/**
 * The token to use, or undefined when there is none (public repos need none). A token file that exists but cannot
 * be read is an error naming the file (never its content).
 */
export function resolveToken(option?: string, env: Env = process.env): ResolvedToken | undefined {
  const found = findToken(option, env);
  if (found !== undefined) {
    if (/\s/.test(found.token)) {
      throw new HubError('bad-input', `the Hugging Face token from ${found.source} contains whitespace; expected a single word such as hf_...`);
    }
    registerSecret(found.token);
  }
  return found;
}

function findToken(option: string | undefined, env: Env): ResolvedToken | undefined {
  const fromOption = nonEmpty(option);
  if (fromOption !== undefined) return { token: fromOption, source: 'option' };
  for (const name of ['HF_TOKEN', 'HUGGING_FACE_HUB_TOKEN']) {
    const v = nonEmpty(env[name]);
    if (v !== undefined) return { token: v, source: name };
  }
  const file = tokenFilePath(env);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new HubError('bad-input', `${file}: cannot read the Hugging Face token file (${code ?? 'error'})`);
  }
  const token = nonEmpty(text);
  return token === undefined ? undefined : { token, source: file };
}

/**
 * The Hub endpoint without a trailing slash: the option, else `HF_ENDPOINT`, else https://huggingface.co.
 * Must be an http(s) URL without credentials, query or fragment.
 */
export function resolveEndpoint(option?: string, env: Env = process.env): string {
  const raw = nonEmpty(option) ?? nonEmpty(env['HF_ENDPOINT']) ?? DEFAULT_ENDPOINT;
  const from = nonEmpty(option) !== undefined ? 'the endpoint option' : nonEmpty(env['HF_ENDPOINT']) !== undefined ? 'HF_ENDPOINT' : 'the default';
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new HubError('bad-input', `${from}: "${raw}" is not a URL; expected e.g. https://huggingface.co`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new HubError('bad-input', `${from}: "${raw}" must be an http:// or https:// URL`);
  }
  if (url.username !== '' || url.password !== '') {
    throw new HubError('bad-input', `${from}: the endpoint URL must not contain credentials; use HF_TOKEN instead`);
  }
  if (url.search !== '' || url.hash !== '') {
    throw new HubError('bad-input', `${from}: the endpoint URL must not have a query or fragment`);
  }
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
}
