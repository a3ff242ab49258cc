/**
 * Checks on names that come from the server (file paths in a listing, revisions, hashes) before any of them is
 * joined onto a local directory. A repository is untrusted input: a name such as `../evil`, `/etc/x`, `a\..\b`,
 * `C:x` or one holding a NUL byte would otherwise write outside the cache. We refuse such names outright instead of
 * trying to sanitise them.
 */
import * as path from 'node:path';
import { HubError } from './hub-error.js';

/** Printable rendering of an untrusted name for error messages (control characters escaped, length capped). */
export function quoteName(name: string): string {
  const json = JSON.stringify(name.length > 200 ? `${name.slice(0, 200)}...` : name);
  return json;
}

/**
 * Throws unless `name` is a plain relative POSIX path: non-empty segments separated by `/`, none of them `.` or
 * `..`, no backslash, no NUL or other control character, not absolute, no Windows drive prefix, at most 4096 bytes.
 * `context` names the repo (and revision) for the message.
 */
export function validateRemotePath(name: string, context: string): void {
  const refuse = (why: string): never => {
    throw new HubError('unsafe-path', `${context}: refusing remote file name ${quoteName(name)}: ${why}; nothing was written`);
  };
  if (typeof name !== 'string' || name === '') refuse('it is empty');
  if (Buffer.byteLength(name, 'utf8') > 4096) refuse('it is longer than 4096 bytes');
  if (/[\u0000-\u001f\u007f]/.test(name)) refuse('it contains a NUL or control character');
  if (name.includes('\\')) refuse('it contains a backslash');
  if (name.startsWith('/')) refuse('it is an absolute path');
  if (/^[A-Za-z]:/.test(name)) refuse('it starts with a drive letter');
  for (const segment of name.split('/')) {
    if (segment === '') refuse('it has an empty path segment');
    if (segment === '..') refuse('it contains a ".." segment that would escape the directory');
    if (segment === '.') refuse('it contains a "." segment');
  }
}

/** Joins a validated remote path onto `root` and checks the result stays strictly inside it. */
export function joinInside(root: string, name: string, context: string): string {
  validateRemotePath(name, context);
  const base = path.resolve(root);
  const full = path.resolve(base, ...name.split('/'));
  if (!full.startsWith(base + path.sep)) {
    throw new HubError('unsafe-path', `${context}: refusing remote file name ${quoteName(name)}: it resolves outside ${base}; nothing was written`);
  }
  return full;
}

/**
 * Revisions become `refs/<revision>` files: branch or tag names (may contain `/`, e.g. `refs/pr/1`) or commit
 * hashes. Same rules as file paths, plus no `~ ^ : ? * [` and no leading `-`.
 */
export function validateRevision(revision: string, context: string): void {
  if (/[~^:?*[\s]/.test(revision) || revision.startsWith('-')) {
    throw new HubError('bad-input', `${context}: revision ${quoteName(revision)} is not a valid branch, tag or commit name`);
  }
  try {
    validateRemotePath(revision, context);
  } catch {
    throw new HubError('bad-input', `${context}: revision ${quoteName(revision)} is not a valid branch, tag or commit name`);
  }
}

export const COMMIT_SHA = /^[0-9a-f]{40}$/;
export const SHA256_HEX = /^[0-9a-f]{64}$/;
