import { describe, expect, it } from 'vitest';
import { backoffDelayMs, createHubFetch, describeHubUrl, parseRetryAfter, DEFAULT_RETRY } from '../src/hub/http.js';
import type { HubError } from '../src/hub/hub-error.js';
import { expectHubError } from './helpers/hub-error.js';

const EP = 'https://hub.example';
const TOKEN = 'hf_unitTestToken0123456789';

interface Call {
  url: string;
  method: string;
  auth: string | null;
  body: string | undefined;
}

/** A scripted fetch: answers the i-th call with script[i] (a Response factory or an error). */
function scripted(script: ((call: Call) => Response | Error)[]): { fetch: typeof fetch; calls: Call[] } {
  const calls: Call[] = [];
  const f = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const headers = new Headers(init?.headers);
    const body = typeof init?.body === 'string' ? init.body : init?.body instanceof Blob ? await init.body.text() : undefined;
    const call: Call = { url: String(input), method: init?.method ?? 'GET', auth: headers.get('authorization'), body };
    calls.push(call);
    const step = script[calls.length - 1];
    if (step === undefined) throw new Error(`unexpected call ${calls.length}: ${call.url}`);
    const r = step(call);
    if (r instanceof Error) throw r;
    return r;
  };
  return { fetch: f as typeof fetch, calls };
}

const ok = (body = 'ok'): (() => Response) => () => new Response(body, { status: 200 });
const status = (s: number, headers: Record<string, string> = {}, body = ''): (() => Response) => () => new Response(body, { status: s, headers });

const caught = (p: Promise<unknown>): Promise<HubError> => expectHubError(p, TOKEN);

describe('backoff and Retry-After', () => {
  it('doubles from the base, is capped, and jitters within [0.5, 1) of the step', () => {
    const p = { ...DEFAULT_RETRY, baseDelayMs: 100, maxDelayMs: 1000 };
    expect([1, 2, 3, 4, 5, 6].map((n) => backoffDelayMs(n, p, () => 0))).toEqual([50, 100, 200, 400, 500, 500]);
    expect([1, 2, 3, 4, 5, 6].map((n) => backoffDelayMs(n, p, () => 0.999999))).toEqual([100, 200, 400, 800, 1000, 1000]);
  });

  it('parses delta seconds and HTTP dates', () => {
    expect(parseRetryAfter('3')).toBe(3000);
    expect(parseRetryAfter('0.5')).toBe(500);
    expect(parseRetryAfter(null)).toBeUndefined();
    expect(parseRetryAfter('soon')).toBeUndefined();
    const now = Date.parse('2024-01-01T00:00:00Z');
    expect(parseRetryAfter('Mon, 01 Jan 2024 00:00:10 GMT', now)).toBe(10_000);
  });
});

describe('describeHubUrl', () => {
  it('names the repo, revision and file of each endpoint, and never a query string', () => {
    const d = (u: string): string => describeHubUrl(new URL(u), EP);
    expect(d(`${EP}/org/m/resolve/main/sub/a%20b.json`)).toBe('file sub/a b.json of repo org/m at revision main');
    expect(d(`${EP}/gpt2/resolve/abc/config.json`)).toBe('file config.json of repo gpt2 at revision abc');
    expect(d(`${EP}/datasets/org/d/resolve/main/x.csv`)).toBe('file x.csv of repo datasets/org/d at revision main');
    expect(d(`${EP}/api/models/org/m/revision/refs%2Fpr%2F1?expand=sha`)).toBe('repo org/m revision refs/pr/1');
    expect(d(`${EP}/api/models/org/m/tree/abc?recursive=true`)).toBe('the file list of repo org/m revision abc');
    expect(d(`${EP}/api/models/org/m/commit/main`)).toBe('the upload to repo org/m branch main');
    expect(d(`${EP}/org/m.git/info/lfs/objects/batch`)).toBe('the LFS upload to repo org/m');
    expect(d(`${EP}/api/repos/create`)).toBe('repo creation');
    expect(d('https://cdn.example/blob?X-Amz-Signature=secret')).toBe('a storage request to https://cdn.example');
    expect(describeHubUrl(new URL('https://h.example/mirror/org/m/resolve/main/a'), 'https://h.example/mirror')).toBe('file a of repo org/m at revision main');
  });
});

describe('createHubFetch', () => {
  it('retries 429 / 500 / 502 / 503 / 504 with backoff and returns the success', async () => {
    const { fetch, calls } = scripted([status(503), status(429, { 'Retry-After': '2' }), status(500), status(504), ok('done')]);
    const delays: number[] = [];
    const f = createHubFetch({ endpoint: EP, token: TOKEN, fetch, sleep: async (ms) => void delays.push(ms), random: () => 0 });
    const res = await f(`${EP}/org/m/resolve/main/config.json`);
    expect(await res.text()).toBe('done');
    expect(calls).toHaveLength(5);
    expect(delays).toEqual([250, 2000, 1000, 2000]); // 500*2^0*0.5, Retry-After 2 s, 500*2^2*0.5, 500*2^3*0.5
  });

  it('honours a Retry-After within the cap; one beyond it fails at once with a message (issue 18 item 13)', async () => {
    const within = scripted([status(429, { 'Retry-After': '30' }), ok()]);
    const delays: number[] = [];
    const f1 = createHubFetch({ endpoint: EP, fetch: within.fetch, sleep: async (ms) => void delays.push(ms), retry: { maxRetryAfterMs: 60_000 } });
    await f1(`${EP}/api/whoami-v2`);
    expect(delays).toEqual([30_000]);

    const beyond = scripted([status(429, { 'Retry-After': '86400' }), ok()]);
    const slept: number[] = [];
    const f2 = createHubFetch({ endpoint: EP, fetch: beyond.fetch, sleep: async (ms) => void slept.push(ms), retry: { maxRetryAfterMs: 60_000 } });
    const e = await caught(f2(`${EP}/api/whoami-v2`));
    expect(slept).toEqual([]);
    expect(beyond.calls).toHaveLength(1);
    expect(e.kind).toBe('rate-limited');
    expect(e.message).toBe(`${EP} (HTTP 429) asked to retry the token check (whoami) after 86400 s (Retry-After), longer than the 60 s this client waits (HF_HUB_MAX_RETRY_AFTER); try again later`);
  });

  it('stops after maxAttempts with a one-line error', async () => {
    const { fetch, calls } = scripted(Array.from({ length: 3 }, () => status(503, { 'Content-Type': 'application/json' }, '{"error":"overloaded"}')));
    const f = createHubFetch({ endpoint: EP, fetch, sleep: async () => undefined, retry: { maxAttempts: 3 } });
    const e = await caught(f(`${EP}/org/m/resolve/main/w.bin`));
    expect(calls).toHaveLength(3);
    expect(e.kind).toBe('server');
    expect(e.status).toBe(503);
    expect(e.message).toBe(`server error from ${EP} (HTTP 503) for file w.bin of repo org/m at revision main after 3 tries: overloaded`);
  });

  it('retries network errors, then reports the cause', async () => {
    const refused = Object.assign(new TypeError('fetch failed'), { cause: Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }) });
    const { fetch, calls } = scripted([() => refused, () => refused]);
    const f = createHubFetch({ endpoint: EP, fetch, sleep: async () => undefined, retry: { maxAttempts: 2 } });
    const e = await caught(f(`${EP}/api/models/org/m/revision/main`));
    expect(calls).toHaveLength(2);
    expect(e.kind).toBe('network');
    expect(e.message).toBe(`network error contacting ${EP} for repo org/m revision main after 2 tries: fetch failed (ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:1)`);
  });

  it('replays string and Blob bodies on retry, but never retries a one-shot stream body', async () => {
    const { fetch, calls } = scripted([status(502), ok()]);
    const f = createHubFetch({ endpoint: EP, fetch, sleep: async () => undefined });
    await f(`${EP}/api/models/org/m/commit/main`, { method: 'POST', body: new Blob(['{"a":1}']) });
    expect(calls.map((c) => c.body)).toEqual(['{"a":1}', '{"a":1}']);

    const s2 = scripted([status(502), ok()]);
    const g = createHubFetch({ endpoint: EP, fetch: s2.fetch, sleep: async () => undefined });
    const stream = new ReadableStream({ start: (c) => { c.enqueue(new TextEncoder().encode('x')); c.close(); } });
    const e = await caught(g(`${EP}/api/models/org/m/commit/main`, { method: 'POST', body: stream }));
    expect(s2.calls).toHaveLength(1);
    expect(e.message).toContain('after 1 try');
  });

  it('sends the token to the endpoint origin only, also across redirects, and replaces any library header', async () => {
    const { fetch, calls } = scripted([
      status(302, { Location: 'https://cdn.example/obj?sig=1' }),
      ok(),
      status(307, { Location: '/org/m/resolve/main/b' }),
      ok(),
    ]);
    const f = createHubFetch({ endpoint: EP, token: TOKEN, fetch });
    await f(`${EP}/org/m/resolve/main/a`, { headers: { Authorization: 'Bearer undefined' } });
    await f('https://cdn.example/other', { headers: { Authorization: `Bearer ${TOKEN}` } });
    expect(calls.map((c) => [c.url, c.auth])).toEqual([
      [`${EP}/org/m/resolve/main/a`, `Bearer ${TOKEN}`],
      ['https://cdn.example/obj?sig=1', null],
      ['https://cdn.example/other', null],
      [`https://cdn.example/org/m/resolve/main/b`, null],
    ]);
  });

  it('bounds redirects', async () => {
    const { fetch } = scripted(Array.from({ length: 12 }, () => status(302, { Location: `${EP}/loop` })));
    const f = createHubFetch({ endpoint: EP, fetch });
    const e = await caught(f(`${EP}/loop`));
    expect(e.kind).toBe('protocol');
    expect(e.message).toContain('too many redirects');
  });

  it('401 / 403 / 404 become one clear line each; other statuses pass through', async () => {
    const { fetch } = scripted([
      status(401, { 'Content-Type': 'application/json' }, `{"error":"Invalid token ${TOKEN}"}`),
      status(403, { 'Content-Type': 'application/json' }, '{"error":"You don\'t have the rights to create a model under the namespace \\"org\\""}'),
      status(404, { 'X-Error-Code': 'EntryNotFound' }, 'Entry not found'),
      status(404, { 'X-Error-Code': 'RevisionNotFound' }),
      status(409, {}, 'exists'),
    ]);
    const f = createHubFetch({ endpoint: EP, token: TOKEN, fetch });
    const e401 = await caught(f(`${EP}/api/models/org/m/revision/main`));
    expect(e401.kind).toBe('auth');
    expect(e401.message).toBe(
      `authentication failed for ${EP} (HTTP 401 on repo org/m revision main): set HF_TOKEN (or log in with \`huggingface-cli login\`) to a valid token with access to this repo; the token sent was rejected (server: Invalid token <redacted>)`,
    );
    const e403 = await caught(f(`${EP}/api/repos/create`, { method: 'POST', body: '{}' }));
    expect(e403.kind).toBe('forbidden');
    expect(e403.message).toBe(
      `no permission for repo creation on ${EP} (HTTP 403): the token does not grant this access (pushing needs a write token; gated repos need their terms accepted) (server: You don't have the rights to create a model under the namespace "org")`,
    );
    const e404 = await caught(f(`${EP}/org/m/resolve/abc/w.safetensors`));
    expect(e404.message).toBe(`not found: file w.safetensors of repo org/m at revision abc on ${EP} (HTTP 404): the file does not exist at this revision (server: Entry not found)`);
    const rev = await caught(f(`${EP}/api/models/org/m/revision/v2`));
    expect(rev.message).toBe(`not found: repo org/m revision v2 on ${EP} (HTTP 404): the revision does not exist`);
    const res = await f(`${EP}/api/repos/create`, { method: 'POST', body: '{}' });
    expect(res.status).toBe(409);
  });
});
