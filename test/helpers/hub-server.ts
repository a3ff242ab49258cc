/**
 * A local stand-in for the Hugging Face Hub, on 127.0.0.1 with random ports, implementing exactly the endpoints
 * the client uses, with the headers @huggingface/hub reads:
 *
 *   hub origin
 *     GET  /api/{models|datasets}/<repo>/revision/<rev>     repo info ({ sha, ... })
 *     GET  /api/{models|datasets}/<repo>/tree/<rev>[/<dir>]  listing (?recursive=, paginated with Link: rel="next")
 *     GET  /[datasets/]<repo>/resolve/<rev>/<path>           regular file: bytes (Range -> 206), ETag = git blob sha1;
 *                                                            LFS file: 302 to the CDN with X-Linked-Etag (sha256)
 *                                                            and X-Linked-Size; X-Repo-Commit on both
 *     GET  /api/whoami-v2
 *     POST /api/repos/create                                  409 when it exists
 *     POST /api/models/<repo>/preupload/<rev>                 LFS for *.safetensors / *.bin, >= 10 MiB or binary
 *     POST /<repo>.git/info/lfs/objects/batch                 basic transfer: upload hrefs on the CDN origin
 *     POST /api/models/<repo>/commit/<rev>                    ndjson: header, file (base64), lfsFile, deletedFile
 *   CDN origin (another port, so another origin: the client must not send the token there)
 *     GET  /lfs/<sha256>   bytes with Range support;   PUT /upload/<sha256>?sig=...   stores an LFS object
 *
 * Reads of public repos need no token; private repos and every write need `Authorization: Bearer <token>`; a wrong
 * token is a 401 anywhere. Faults can be injected per request (status codes with Retry-After, a connection dropped
 * mid-body, a corrupted body) and every request is logged. Unknown routes answer 404 and are recorded in
 * `unhandled`. A request budget stops runaway client loops.
 *
 * Also here: the model / adapter directories the Hub tests push and pull, a byte-level directory listing and a
 * search of a tree for a secret.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { writeSafetensors } from '../../src/io/safetensors-writer.js';

export type RepoKind = 'model' | 'dataset';

export interface StoredFile {
  content: Buffer;
  lfs: boolean;
}

export interface MockRepo {
  type: RepoKind;
  id: string;
  private: boolean;
  branches: Map<string, string>;
  commits: Map<string, Map<string, StoredFile>>;
}

export interface LoggedRequest {
  origin: 'hub' | 'cdn';
  method: string;
  path: string;
  range: string | undefined;
  authorization: boolean;
  status: number;
}

export interface RequestInfo {
  origin: 'hub' | 'cdn';
  method: string;
  /** pathname, decoded */
  path: string;
  range: string | undefined;
}

export type Fault =
  | { kind: 'status'; status: number; retryAfter?: string; body?: string }
  | { kind: 'drop'; /** bytes of the body sent before the socket is destroyed (default: half) */ after?: number }
  | { kind: 'corrupt' };

export interface InjectedFault {
  when: (req: RequestInfo) => boolean;
  fault: Fault;
  /** How many matching requests it hits (default 1). */
  times?: number;
}

export interface ExtraTreeEntry {
  type: 'file' | 'directory';
  path: string;
  size?: number;
  oid?: string;
  lfs?: { oid: string; size: number; pointerSize: number };
}

export interface MockHubOptions {
  /** The one valid token (must look like hf_...). */
  token?: string;
  /** whoami user name; the namespace for repos created without an organization. */
  user?: string;
  /** Entries per tree page (default: all in one page). */
  treePageSize?: number;
  /** Echo the Authorization header in error bodies (a hostile server, to test redaction). */
  echoAuthorization?: boolean;
  /** Stop answering normally after this many requests (default 5000). */
  maxRequests?: number;
  /** Address the CDN listens on (default 127.0.0.1; e.g. 127.0.0.2 on Linux makes it another host, not just port). */
  cdnHost?: string;
}

export interface MockHub {
  endpoint: string;
  cdnOrigin: string;
  token: string;
  repos: Map<string, MockRepo>;
  lfsObjects: Map<string, Buffer>;
  requests: LoggedRequest[];
  unhandled: string[];
  /** Extra entries appended to every tree listing (malicious listings). */
  extraTreeEntries: ExtraTreeEntry[];
  /** Creates (or adds a commit to) a repo; returns the commit sha. */
  seed(repo: string, files: Record<string, Buffer | string | StoredFile>, opts?: { type?: RepoKind; private?: boolean; branch?: string }): string;
  inject(fault: InjectedFault): void;
  /** The files of a repo at a revision (default main). */
  filesAt(repo: string, revision?: string, type?: RepoKind): Map<string, StoredFile>;
  close(): Promise<void>;
}

const LFS_EXT = /\.(safetensors|bin|pt|pth|gguf|npy|npz|h5|onnx|msgpack)$/;

export function gitBlobSha1(bytes: Buffer): string {
  return createHash('sha1').update(`blob ${bytes.length}\0`).update(bytes).digest('hex');
}

export function sha256Hex(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function lfsPointer(bytes: Buffer): Buffer {
  return Buffer.from(`version https://git-lfs.github.com/spec/v1\noid sha256:${sha256Hex(bytes)}\nsize ${bytes.length}\n`);
}

const GITATTRIBUTES = '*.safetensors filter=lfs diff=lfs merge=lfs -text\n*.bin filter=lfs diff=lfs merge=lfs -text\n';

function decodeSegments(pathname: string): string[] {
  return pathname.split('/').filter((s) => s !== '').map((s) => decodeURIComponent(s));
}

async function readBody(req: http.IncomingMessage, limit = 256 * 1024 * 1024): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of req) {
    n += (c as Buffer).length;
    if (n > limit) throw new Error('body too large');
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}

function parseRange(header: string | undefined, size: number): { start: number; end: number } | 'invalid' | undefined {
  if (header === undefined) return undefined;
  const m = /^bytes=(\d+)-(\d*)$/.exec(header.trim());
  if (m === null) return 'invalid';
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (start >= size || end < start) return 'invalid';
  return { start, end };
}

export async function startMockHub(options: MockHubOptions = {}): Promise<MockHub> {
  const token = options.token ?? 'hf_mockTokenDoNotLeak0123456789abcdef';
  const user = options.user ?? 'tester';
  const maxRequests = options.maxRequests ?? 5000;
  const repos = new Map<string, MockRepo>();
  const lfsObjects = new Map<string, Buffer>();
  const requests: LoggedRequest[] = [];
  const unhandled: string[] = [];
  const faults: InjectedFault[] = [];
  const extraTreeEntries: ExtraTreeEntry[] = [];
  let commitCounter = 0;
  let endpoint = '';
  let cdnOrigin = '';

  const key = (type: RepoKind, id: string): string => `${type}:${id}`;

  const newCommit = (repo: MockRepo, parent: string | undefined, files: Map<string, StoredFile>, note: string): string => {
    const sha = createHash('sha1').update(`${repo.id}\0${parent ?? ''}\0${note}\0${commitCounter++}`).digest('hex');
    repo.commits.set(sha, files);
    return sha;
  };

  const createRepoRecord = (type: RepoKind, id: string, isPrivate: boolean): MockRepo => {
    const repo: MockRepo = { type, id, private: isPrivate, branches: new Map(), commits: new Map() };
    const files = new Map<string, StoredFile>([['.gitattributes', { content: Buffer.from(GITATTRIBUTES), lfs: false }]]);
    repo.branches.set('main', newCommit(repo, undefined, files, 'initial commit'));
    repos.set(key(type, id), repo);
    return repo;
  };

  const resolveRev = (repo: MockRepo, rev: string): string | undefined => {
    if (repo.branches.has(rev)) return repo.branches.get(rev);
    if (repo.commits.has(rev)) return rev;
    return undefined;
  };

  const takeFault = (info: RequestInfo): Fault | undefined => {
    for (const f of faults) {
      if ((f.times ?? 1) > 0 && f.when(info)) {
        f.times = (f.times ?? 1) - 1;
        return f.fault;
      }
    }
    return undefined;
  };

  type Ctx = {
    req: http.IncomingMessage;
    res: http.ServerResponse;
    info: RequestInfo;
    authorized: boolean;
    badToken: boolean;
    fault: Fault | undefined;
    log: LoggedRequest;
  };

  const send = (c: Ctx, status: number, body: unknown, headers: Record<string, string> = {}): void => {
    c.log.status = status;
    const isJson = typeof body !== 'string' && !Buffer.isBuffer(body);
    const data = Buffer.isBuffer(body) ? body : Buffer.from(isJson ? JSON.stringify(body) : (body as string));
    c.res.writeHead(status, { 'Content-Type': isJson ? 'application/json' : 'text/plain', 'Content-Length': String(data.length), ...headers });
    c.res.end(data);
  };

  const error = (c: Ctx, status: number, message: string, code?: string): void => {
    const echoed = options.echoAuthorization === true ? ` (you sent: ${c.req.headers.authorization ?? 'nothing'})` : '';
    send(c, status, { error: `${message}${echoed}` }, code === undefined ? {} : { 'X-Error-Code': code });
  };

  /** Sends file bytes honouring Range and the injected body faults. */
  const sendBytes = (c: Ctx, bytes: Buffer, headers: Record<string, string>): void => {
    const range = parseRange(c.info.range, bytes.length);
    if (range === 'invalid') {
      send(c, 416, '', { 'Content-Range': `bytes */${bytes.length}` });
      return;
    }
    let status = 200;
    let body = bytes;
    const h: Record<string, string> = { 'Accept-Ranges': 'bytes', 'Content-Type': 'application/octet-stream', ...headers };
    if (range !== undefined) {
      status = 206;
      body = bytes.subarray(range.start, range.end + 1);
      h['Content-Range'] = `bytes ${range.start}-${range.end}/${bytes.length}`;
    }
    h['Content-Length'] = String(body.length);
    c.log.status = status;
    if (c.fault?.kind === 'corrupt' && body.length > 0) {
      body = Buffer.from(body);
      body[body.length >> 1] ^= 0xff;
    }
    if (c.fault?.kind === 'drop') {
      const after = Math.min(c.fault.after ?? body.length >> 1, body.length);
      c.res.writeHead(status, h);
      c.res.write(body.subarray(0, after), () => {
        setTimeout(() => c.req.socket.destroy(), 30);
      });
      return;
    }
    c.res.writeHead(status, h);
    c.res.end(c.req.method === 'HEAD' ? undefined : body);
  };

  const treeEntry = (p: string, f: StoredFile): Record<string, unknown> => {
    if (!f.lfs) return { type: 'file', oid: gitBlobSha1(f.content), size: f.content.length, path: p };
    const pointer = lfsPointer(f.content);
    return { type: 'file', oid: gitBlobSha1(pointer), size: f.content.length, path: p, lfs: { oid: sha256Hex(f.content), size: f.content.length, pointerSize: pointer.length } };
  };

  const canRead = (c: Ctx, repo: MockRepo | undefined): boolean => repo !== undefined && (!repo.private || c.authorized);

  const handleHub = async (c: Ctx, url: URL): Promise<void> => {
    const seg = decodeSegments(url.pathname);
    const method = c.info.method;
    if (c.badToken) return error(c, 401, 'Invalid credentials in Authorization header');

    if (seg[0] === 'api' && seg[1] === 'whoami-v2' && method === 'GET') {
      if (!c.authorized) return error(c, 401, 'Invalid credentials in Authorization header');
      return send(c, 200, { type: 'user', name: user, auth: { type: 'access_token', accessToken: { displayName: 'mock', role: 'write', createdAt: '2024-01-01T00:00:00Z' } } });
    }

    if (seg[0] === 'api' && seg[1] === 'repos' && seg[2] === 'create' && method === 'POST') {
      if (!c.authorized) return error(c, 401, 'You must be authenticated to create a repo');
      const body = JSON.parse((await readBody(c.req)).toString('utf8')) as { name: string; organization?: string; type?: string; visibility?: string; private?: boolean };
      const type: RepoKind = body.type === 'dataset' ? 'dataset' : 'model';
      const id = `${body.organization ?? user}/${body.name}`;
      if (repos.has(key(type, id))) return send(c, 409, { error: 'You already created this model repo', url: `${endpoint}/${id}` });
      createRepoRecord(type, id, body.visibility === 'private' || body.private === true);
      return send(c, 200, { url: `${endpoint}/${id}`, name: id, id: `mock-${id}` });
    }

    if (seg[0] === 'api' && (seg[1] === 'models' || seg[1] === 'datasets')) {
      const type: RepoKind = seg[1] === 'models' ? 'model' : 'dataset';
      const k = seg.findIndex((s, i) => i >= 3 && ['revision', 'tree', 'preupload', 'commit'].includes(s));
      if (k < 0) return undefined;
      const id = seg.slice(2, k).join('/');
      const repo = repos.get(key(type, id));
      const rev = seg[k + 1] ?? 'main';
      if (!canRead(c, repo)) return error(c, c.authorized ? 404 : 401, 'Repository not found', 'RepoNotFound');
      const sha = resolveRev(repo!, rev);
      const verb = seg[k]!;

      if (verb === 'revision' && method === 'GET') {
        if (sha === undefined) return error(c, 404, `Invalid rev id: ${rev}`, 'RevisionNotFound');
        const files = repo!.commits.get(sha)!;
        return send(c, 200, {
          _id: `mock-${id}`, id, private: repo!.private, sha, gated: false, downloads: 0, likes: 0,
          lastModified: '2024-01-01T00:00:00.000Z', pipeline_tag: 'text-generation',
          siblings: [...files.keys()].map((rfilename) => ({ rfilename })),
        });
      }
      if (verb === 'tree' && method === 'GET') {
        if (sha === undefined) return error(c, 404, `Invalid rev id: ${rev}`, 'RevisionNotFound');
        const sub = seg.slice(k + 2).join('/');
        const recursive = url.searchParams.get('recursive') === 'true';
        const files = repo!.commits.get(sha)!;
        const entries: Record<string, unknown>[] = [];
        const dirs = new Set<string>();
        for (const [p, f] of [...files.entries()].sort(([a], [b]) => (a < b ? -1 : 1))) {
          if (sub !== '' && !p.startsWith(`${sub}/`)) continue;
          const rel = sub === '' ? p : p.slice(sub.length + 1);
          const parts = rel.split('/');
          if (!recursive && parts.length > 1) {
            dirs.add(sub === '' ? parts[0]! : `${sub}/${parts[0]}`);
            continue;
          }
          for (let i = 1; i < parts.length; i++) dirs.add([sub, ...parts.slice(0, i)].filter((s) => s !== '').join('/'));
          entries.push(treeEntry(p, f));
        }
        const all = [...[...dirs].sort().map((d) => ({ type: 'directory', oid: '0'.repeat(40), size: 0, path: d })), ...entries, ...extraTreeEntries];
        const pageSize = options.treePageSize ?? all.length + 1;
        const cursor = Number(url.searchParams.get('cursor') ?? '0');
        const page = all.slice(cursor, cursor + pageSize);
        const headers: Record<string, string> = {};
        if (cursor + pageSize < all.length) {
          const next = new URL(url.href);
          next.searchParams.set('cursor', String(cursor + pageSize));
          headers['Link'] = `<${next.href}>; rel="next"`;
        }
        return send(c, 200, page, headers);
      }
      if (verb === 'preupload' && method === 'POST') {
        if (!c.authorized) return error(c, 401, 'Invalid credentials in Authorization header');
        if (sha === undefined) return error(c, 404, `Invalid rev id: ${rev}`, 'RevisionNotFound');
        const body = JSON.parse((await readBody(c.req)).toString('utf8')) as { files: { path: string; size: number; sample: string }[] };
        return send(c, 200, {
          files: body.files.map((f) => {
            const binary = Buffer.from(f.sample, 'base64').includes(0);
            return { path: f.path, uploadMode: LFS_EXT.test(f.path) || f.size >= 10 * 1024 * 1024 || binary ? 'lfs' : 'regular', shouldIgnore: false };
          }),
        });
      }
      if (verb === 'commit' && method === 'POST') {
        if (!c.authorized) return error(c, 401, 'Invalid credentials in Authorization header');
        if (sha === undefined) return error(c, 404, `Invalid rev id: ${rev}`, 'RevisionNotFound');
        const lines = (await readBody(c.req)).toString('utf8').split('\n').filter((l) => l.trim() !== '');
        const files = new Map(repo!.commits.get(sha)!);
        let summary = '';
        for (const line of lines) {
          const { key: k2, value } = JSON.parse(line) as { key: string; value: Record<string, unknown> };
          if (k2 === 'header') summary = String(value['summary'] ?? '');
          else if (k2 === 'file') files.set(String(value['path']), { content: Buffer.from(String(value['content']), value['encoding'] === 'base64' ? 'base64' : 'utf8'), lfs: false });
          else if (k2 === 'lfsFile') {
            const obj = lfsObjects.get(String(value['oid']));
            if (obj === undefined || obj.length !== value['size']) return error(c, 422, `LFS object ${String(value['oid'])} for ${String(value['path'])} was not uploaded`);
            files.set(String(value['path']), { content: obj, lfs: true });
          } else if (k2 === 'deletedFile') files.delete(String(value['path']));
          else return error(c, 400, `unknown commit operation ${k2}`);
        }
        const commit = newCommit(repo!, sha, files, summary);
        repo!.branches.set(rev, commit);
        return send(c, 200, { success: true, commitOid: commit, commitUrl: `${endpoint}/${id}/commit/${commit}`, hookOutput: '' });
      }
      return undefined;
    }

    const gitIdx = seg.findIndex((s) => s.endsWith('.git'));
    if (gitIdx >= 0 && seg.slice(gitIdx + 1).join('/') === 'info/lfs/objects/batch' && method === 'POST') {
      const isDataset = seg[0] === 'datasets';
      const id = [...seg.slice(isDataset ? 1 : 0, gitIdx), seg[gitIdx]!.slice(0, -4)].join('/');
      const repo = repos.get(key(isDataset ? 'dataset' : 'model', id));
      if (!c.authorized) return error(c, 401, 'Invalid credentials in Authorization header');
      if (repo === undefined) return error(c, 404, 'Repository not found', 'RepoNotFound');
      const body = JSON.parse((await readBody(c.req)).toString('utf8')) as { operation: string; objects: { oid: string; size: number }[] };
      if (body.operation !== 'upload') return error(c, 400, 'only upload is supported');
      return send(
        c,
        200,
        {
          transfer: 'basic',
          objects: body.objects.map((o) => ({
            oid: o.oid,
            size: o.size,
            authenticated: true,
            ...(lfsObjects.has(o.oid) ? {} : { actions: { upload: { href: `${cdnOrigin}/upload/${o.oid}?sig=presigned-${o.size}`, expires_in: 3600 } } }),
          })),
        },
        { 'Content-Type': 'application/vnd.git-lfs+json' },
      );
    }

    const r = seg.indexOf('resolve');
    if (r > 0 && (method === 'GET' || method === 'HEAD')) {
      const isDataset = seg[0] === 'datasets';
      const id = seg.slice(isDataset ? 1 : 0, r).join('/');
      const repo = repos.get(key(isDataset ? 'dataset' : 'model', id));
      if (!canRead(c, repo)) return error(c, c.authorized ? 404 : 401, 'Repository not found', 'RepoNotFound');
      const rev = seg[r + 1] ?? '';
      const sha = resolveRev(repo!, rev);
      if (sha === undefined) return error(c, 404, `Invalid rev id: ${rev}`, 'RevisionNotFound');
      const filePath = seg.slice(r + 2).join('/');
      const file = repo!.commits.get(sha)!.get(filePath);
      if (file === undefined) return error(c, 404, `Entry not found: ${filePath}`, 'EntryNotFound');
      if (file.lfs) {
        const oid = sha256Hex(file.content);
        return send(c, 302, '', {
          Location: `${cdnOrigin}/lfs/${oid}`,
          'X-Linked-Etag': `"${oid}"`,
          'X-Linked-Size': String(file.content.length),
          'X-Repo-Commit': sha,
          ETag: `"${gitBlobSha1(lfsPointer(file.content))}"`,
        });
      }
      return sendBytes(c, file.content, { ETag: `"${gitBlobSha1(file.content)}"`, 'X-Repo-Commit': sha });
    }
    return undefined;
  };

  const handleCdn = async (c: Ctx, url: URL): Promise<void> => {
    const seg = decodeSegments(url.pathname);
    if (seg[0] === 'lfs' && seg.length === 2 && (c.info.method === 'GET' || c.info.method === 'HEAD')) {
      const obj = lfsObjects.get(seg[1]!);
      if (obj === undefined) return send(c, 404, 'NoSuchKey');
      return sendBytes(c, obj, { ETag: `"${seg[1]}"` });
    }
    if (seg[0] === 'upload' && seg.length === 2 && c.info.method === 'PUT') {
      if (url.searchParams.get('sig') === null) return send(c, 403, 'missing signature');
      const body = await readBody(c.req);
      if (sha256Hex(body) !== seg[1]) return send(c, 400, 'sha256 mismatch');
      lfsObjects.set(seg[1]!, body);
      return send(c, 200, '', { ETag: `"${seg[1]}"` });
    }
    return undefined;
  };

  const handler = (origin: 'hub' | 'cdn') => (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const url = new URL(req.url ?? '/', origin === 'hub' ? endpoint : cdnOrigin);
    let decoded: string;
    try {
      decoded = decodeURIComponent(url.pathname);
    } catch {
      decoded = url.pathname;
    }
    const info: RequestInfo = { origin, method: (req.method ?? 'GET').toUpperCase(), path: decoded, range: req.headers.range };
    const auth = req.headers.authorization;
    const log: LoggedRequest = { origin, method: info.method, path: decoded, range: info.range, authorization: auth !== undefined, status: 0 };
    requests.push(log);
    const c: Ctx = {
      req,
      res,
      info,
      authorized: auth === `Bearer ${token}`,
      badToken: auth !== undefined && auth !== `Bearer ${token}`,
      fault: undefined,
      log,
    };
    if (requests.length > maxRequests) {
      send(c, 400, 'mock hub: request budget exhausted');
      return;
    }
    const fault = takeFault(info);
    if (fault?.kind === 'status') {
      req.resume();
      send(c, fault.status, fault.body ?? `injected ${fault.status}`, fault.retryAfter === undefined ? {} : { 'Retry-After': fault.retryAfter });
      return;
    }
    c.fault = fault;
    const done = origin === 'hub' ? handleHub(c, url) : handleCdn(c, url);
    done
      .then(() => {
        if (!res.headersSent) {
          unhandled.push(`${origin} ${info.method} ${url.pathname}${url.search}`);
          req.resume();
          send(c, 404, { error: 'mock hub: no such endpoint' });
        }
      })
      .catch((err: unknown) => {
        if (!res.headersSent) send(c, 500, { error: `mock hub: ${(err as Error).message}` });
        else res.destroy();
      });
  };

  const hubServer = http.createServer(handler('hub'));
  const cdnServer = http.createServer(handler('cdn'));
  const listen = (s: http.Server, host: string): Promise<number> =>
    new Promise((resolve, reject) => {
      s.once('error', reject);
      s.listen(0, host, () => resolve((s.address() as AddressInfo).port));
    });
  const cdnHost = options.cdnHost ?? '127.0.0.1';
  endpoint = `http://127.0.0.1:${await listen(hubServer, '127.0.0.1')}`;
  cdnOrigin = `http://${cdnHost}:${await listen(cdnServer, cdnHost)}`;

  return {
    endpoint,
    cdnOrigin,
    token,
    repos,
    lfsObjects,
    requests,
    unhandled,
    extraTreeEntries,
    seed(repoId, files, opts = {}) {
      const type = opts.type ?? 'model';
      const repo = repos.get(key(type, repoId)) ?? createRepoRecord(type, repoId, opts.private ?? false);
      const branch = opts.branch ?? 'main';
      const parent = repo.branches.get(branch) ?? repo.branches.get('main')!;
      const next = new Map(repo.commits.get(parent)!);
      for (const [p, v] of Object.entries(files)) {
        const f: StoredFile = Buffer.isBuffer(v) ? { content: v, lfs: LFS_EXT.test(p) } : typeof v === 'string' ? { content: Buffer.from(v), lfs: false } : v;
        if (f.lfs) lfsObjects.set(sha256Hex(f.content), f.content);
        next.set(p, f);
      }
      const sha = newCommit(repo, parent, next, 'seed');
      repo.branches.set(branch, sha);
      return sha;
    },
    inject(f) {
      faults.push({ ...f });
    },
    filesAt(repoId, revision = 'main', type = 'model') {
      const repo = repos.get(key(type, repoId));
      if (repo === undefined) throw new Error(`mock hub: no repo ${repoId}`);
      const sha = resolveRev(repo, revision);
      if (sha === undefined) throw new Error(`mock hub: no revision ${revision} in ${repoId}`);
      return repo.commits.get(sha)!;
    },
    async close() {
      for (const s of [hubServer, cdnServer]) {
        s.closeAllConnections();
        await new Promise<void>((resolve) => s.close(() => resolve()));
      }
    },
  };
}

// ---- fixtures for the Hub tests ----

function seededFloats(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 32 - 0.5;
  }
  return out;
}

/** A tiny Mixtral-shaped model directory: config, generation config, tokenizer files and ~200 KB of weights. */
export function writeTinyModelDir(dir: string): void {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(
    path.join(dir, 'config.json'),
    `${JSON.stringify({ architectures: ['MixtralForCausalLM'], model_type: 'mixtral', hidden_size: 32, intermediate_size: 40, num_hidden_layers: 1, num_attention_heads: 4, num_key_value_heads: 2, num_local_experts: 4, num_experts_per_tok: 2, vocab_size: 96 }, null, 2)}\n`,
  );
  fs.writeFileSync(path.join(dir, 'generation_config.json'), '{\n  "bos_token_id": 1,\n  "eos_token_id": 2\n}\n');
  fs.mkdirSync(path.join(dir, 'tokenizer'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'tokenizer', 'vocab.json'), JSON.stringify({ a: 0, b: 1, 'é': 2 }));
  writeSafetensors(path.join(dir, 'model.safetensors'), [
    { name: 'model.embed_tokens.weight', dtype: 'F32', shape: [96, 32], data: seededFloats(96 * 32, 1) },
    { name: 'model.layers.0.block_sparse_moe.gate.weight', dtype: 'F32', shape: [4, 32], data: seededFloats(128, 2) },
    { name: 'model.layers.0.block_sparse_moe.experts.0.w1.weight', dtype: 'BF16', shape: [40, 32], data: seededFloats(1280, 3) },
    { name: 'lm_head.weight', dtype: 'F32', shape: [96, 32], data: seededFloats(96 * 32, 4) },
    { name: 'big', dtype: 'F32', shape: [40000], data: seededFloats(40000, 5) },
  ]);
}

/** A PEFT-style LoRA adapter directory. */
export function writeTinyAdapterDir(dir: string): void {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'adapter_config.json'), JSON.stringify({ peft_type: 'LORA', r: 4, lora_alpha: 8, target_modules: ['q_proj', 'v_proj'] }));
  writeSafetensors(path.join(dir, 'adapter_model.safetensors'), [
    { name: 'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight', dtype: 'F32', shape: [4, 32], data: seededFloats(128, 7) },
    { name: 'base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight', dtype: 'F32', shape: [32, 4], data: seededFloats(128, 8) },
  ]);
  // a small binary file that is not safetensors: the server must route it to LFS by content
  fs.writeFileSync(path.join(dir, 'router_state.dat'), Buffer.from([0, 1, 2, 3, 0, 255, 254, 0]));
}

/** Relative POSIX paths of the regular files (symlinks followed) under `dir`, sorted. */
export function listFilesRecursive(dir: string): string[] {
  const out: string[] = [];
  const walk = (abs: string, rel: string): void => {
    for (const e of fs.readdirSync(abs, { withFileTypes: true })) {
      const a = path.join(abs, e.name);
      const r = rel === '' ? e.name : `${rel}/${e.name}`;
      const st = fs.statSync(a);
      if (st.isDirectory()) walk(a, r);
      else out.push(r);
    }
  };
  walk(dir, '');
  return out.sort();
}

/** Every file and symlink target under `root` that contains `secret` (paths), plus names containing it. */
export function findSecret(root: string, secret: string): string[] {
  const hits: string[] = [];
  const needle = Buffer.from(secret);
  const walk = (abs: string): void => {
    for (const e of fs.readdirSync(abs, { withFileTypes: true })) {
      const a = path.join(abs, e.name);
      if (e.name.includes(secret)) hits.push(a);
      if (e.isSymbolicLink()) {
        if (fs.readlinkSync(a).includes(secret)) hits.push(a);
        continue;
      }
      if (e.isDirectory()) walk(a);
      else if (e.isFile() && fs.readFileSync(a).includes(needle)) hits.push(a);
    }
  };
  if (fs.existsSync(root)) walk(root);
  return hits;
}
