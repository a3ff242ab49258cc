/**
 * `--model DIR | org/name`: a local directory as it is, or a Hugging Face repo id pulled into the
 * Hub cache first (its snapshot directory is the model directory).
 */
import * as fs from 'node:fs';
import { hubPull } from '../hub/index.js';

/** Whether text reads as a Hub repo id (org/name) rather than a path. */
export function looksLikeRepoId(text: string): boolean {
  return /^[A-Za-z0-9][A-Za-z0-9._-]*\/[A-Za-z0-9][A-Za-z0-9._-]*$/.test(text) && !text.startsWith('.') && !text.includes('..');
}

export interface ModelSourceOptions {
  endpoint?: string;
  cacheDir?: string;
  revision?: string;
  log?: (line: string) => void;
}

/** The local directory of a --model value (pulled from the Hub when it is a repo id and not a local path). */
export async function resolveModelDir(ref: string, opts: ModelSourceOptions = {}): Promise<string> {
  if (fs.existsSync(ref)) return ref;
  if (!looksLikeRepoId(ref)) throw new Error(`${ref}: model directory not found`);
  opts.log?.(`pulling ${ref} from the Hub`);
  const res = await hubPull(ref, {
    ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
    ...(opts.cacheDir ? { cacheDir: opts.cacheDir } : {}),
    ...(opts.revision ? { revision: opts.revision } : {}),
  });
  opts.log?.(`pulled ${ref}@${res.commit.slice(0, 12)} into ${res.snapshotDir}`);
  return res.snapshotDir;
}
