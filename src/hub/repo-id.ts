/**
 * Repository designations: `org/name` or `name` for models, `datasets/org/name` for datasets. Names follow the
 * Hub's rules (letters, digits, `-`, `_`, `.`; no `--` or `..`; at most 96 characters; not starting or ending with
 * `-` or `.`), which also keeps them safe as cache folder names (`models--org--name`).
 */
import { HubError } from './hub-error.js';

export type RepoType = 'model' | 'dataset';

export interface RepoRef {
  type: RepoType;
  /** `org/name` or `name`. */
  id: string;
}

const PART = /^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?$/;

function checkPart(designation: string, part: string): void {
  if (!PART.test(part) || part.includes('--') || part.includes('..')) {
    throw new HubError(
      'bad-input',
      `repo "${designation}": "${part}" is not a valid Hub name; expected letters, digits, "-", "_" or "." (no "--" or "..", at most 96 characters)`,
    );
  }
}

/** Parses `org/name`, `name` or `datasets/org/name` (a `models/` prefix is accepted and dropped). */
export function parseRepo(designation: string): RepoRef {
  let rest = designation.trim();
  let type: RepoType = 'model';
  if (rest.startsWith('datasets/')) {
    type = 'dataset';
    rest = rest.slice('datasets/'.length);
  } else if (rest.startsWith('models/')) {
    rest = rest.slice('models/'.length);
  }
  const parts = rest.split('/');
  if (rest === '' || parts.length > 2) {
    throw new HubError('bad-input', `repo "${designation}": expected "org/name" (or "name", or "datasets/org/name")`);
  }
  for (const part of parts) checkPart(designation, part);
  return { type, id: rest };
}

/** The designation the @huggingface/hub library expects. */
export function libraryRepo(repo: RepoRef): { type: RepoType; name: string } {
  return { type: repo.type, name: repo.id };
}

/** `org/name` for models, `datasets/org/name` for datasets (for messages). */
export function repoLabel(repo: RepoRef): string {
  return repo.type === 'model' ? repo.id : `datasets/${repo.id}`;
}

/** The Python cache's folder name: `models--org--name`, `datasets--org--name`. */
export function repoFolderName(repo: RepoRef): string {
  return `${repo.type}s--${repo.id.split('/').join('--')}`;
}
