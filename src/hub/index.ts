/** Hugging Face Hub client: pull into the shared cache, push a model / adapter with its card. */
export { hubPull, checkListing, ListingChecker, normalizeEtag, type HubPullOptions, type HubPullProgress, type HubPullResult, type PulledFile } from './pull.js';
export { hubPush, listLocalFiles, type HubPushOptions, type HubPushProgress, type HubPushResult, type LocalFile } from './push.js';
export { renderModelCard, renderLoadTable, type ModelCardInput, type LoadTable } from './model-card.js';
export { resolveToken, resolveEndpoint, hfHomeDir, tokenFilePath, DEFAULT_ENDPOINT, type ResolvedToken, type Env } from './auth.js';
export { hubCacheDir, repoCachePaths, type RepoCachePaths } from './cache-layout.js';
export { createHubFetch, describeHubUrl, backoffDelayMs, parseRetryAfter, DEFAULT_RETRY, RETRYABLE_STATUS, type RetryPolicy, type RetryEvent, type HubFetchOptions } from './http.js';
export { HubError, redactSecrets, registerSecret, type HubErrorKind } from './hub-error.js';
export { parseRepo, repoFolderName, type RepoRef, type RepoType } from './repo-id.js';
export { validateRemotePath, validateRevision } from './remote-path.js';
export { globToRegExp, matchesGlob, pathFilter } from './glob.js';
export type { HubCallOptions } from './hub-call.js';
export { findCachedSnapshot, hubOffline, envFlag, type CachedSnapshot, type CacheLookupOptions } from './cache-lookup.js';
export { listTree, nextLink, JsonArrayStream, type TreeEntry, type ListTreeOptions } from './list-tree.js';
