/**
 * The content hashes the Hub names files by: sha256 of the bytes for LFS files (the LFS oid, also the blob name
 * in the Python cache), and the git blob sha1 (`sha1("blob <size>\0" + bytes)`, the tree oid) for regular files.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';

export type HashAlgorithm = 'sha256' | 'git-sha1';

export interface ExpectedHash {
  algorithm: HashAlgorithm;
  /** Lower-case hex. */
  hex: string;
}

/** Hash of in-memory bytes. */
export function hashBytes(bytes: Uint8Array, algorithm: HashAlgorithm): string {
  const h = createHash(algorithm === 'sha256' ? 'sha256' : 'sha1');
  if (algorithm === 'git-sha1') h.update(`blob ${bytes.byteLength}\0`);
  h.update(bytes);
  return h.digest('hex');
}

/** Hash of a file, streamed. */
export async function hashFile(file: string, algorithm: HashAlgorithm): Promise<string> {
  const h = createHash(algorithm === 'sha256' ? 'sha256' : 'sha1');
  if (algorithm === 'git-sha1') h.update(`blob ${fs.statSync(file).size}\0`);
  for await (const chunk of fs.createReadStream(file, { highWaterMark: 1 << 20 })) h.update(chunk as Buffer);
  return h.digest('hex');
}

export function hashName(algorithm: HashAlgorithm): string {
  return algorithm === 'sha256' ? 'sha256' : 'git blob sha1';
}
