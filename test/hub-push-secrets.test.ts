/**
 * Push never publishes the token (issue 18, item 16): every file is scanned, streaming, whatever its size (a
 * 65 MiB file holding HF_TOKEN near its end); base64 forms are found at every alignment and in both alphabets;
 * a symlink that leads outside the pushed directory is refused, naming it; nothing is uploaded in any of these
 * cases. Links inside the directory (and a pulled snapshot's links into its blobs) still push.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { hubPush, type HubPushOptions } from '../src/hub/push.js';
import { hubPull } from '../src/hub/pull.js';
import { expectHubError } from './helpers/hub-error.js';
import { makeTmpDir } from './helpers/tmpdir.js';
import { startMockHub, writeTinyAdapterDir, type MockHub } from './helpers/hub-server.js';

let hub: MockHub;
let work: string;

function opts(over: HubPushOptions = {}): HubPushOptions {
  return { endpoint: hub.endpoint, token: hub.token, env: { HOME: work }, sleep: async () => undefined, ...over };
}

beforeEach(async () => {
  hub = await startMockHub();
  work = makeTmpDir('hub-push-secrets');
});
afterEach(async () => {
  await hub.close();
});

/** Nothing reached the server's upload endpoints. */
function expectNothingUploaded(): void {
  expect(hub.requests.filter((r) => /\/(commit|preupload)\/|objects\/batch|^\/upload\//.test(r.path))).toEqual([]);
}

function adapter(name: string): string {
  const dir = path.join(work, name);
  writeTinyAdapterDir(dir);
  return dir;
}

describe('the token is never pushed', () => {
  it('a 65 MiB file with the token near its end is refused, naming the file', async () => {
    const dir = adapter('big');
    const big = path.join(dir, 'weights.bin');
    const fd = fs.openSync(big, 'w');
    const block = Buffer.alloc(1 << 20, 7);
    for (let i = 0; i < 65; i++) fs.writeSync(fd, block);
    fs.writeSync(fd, Buffer.from(`\nHF_TOKEN=${hub.token}\n`));
    fs.closeSync(fd);
    expect(fs.statSync(big).size).toBeGreaterThan(64 * 1024 * 1024);
    const e = await expectHubError(hubPush(dir, 'tester/big', opts()), hub.token);
    expect(e.message).toBe(`${big}: refusing to upload a file that contains your Hugging Face token; remove it from the directory`);
    expectNothingUploaded();
  }, 60_000);

  it.each([0, 1, 2, 5, 17])('base64 of the token after %i bytes (standard and URL-safe) is refused', async (prefix) => {
    for (const urlSafe of [false, true]) {
      const dir = adapter(`b64-${prefix}-${urlSafe}`);
      let b64 = Buffer.concat([Buffer.from('user:'.repeat(4).slice(0, prefix)), Buffer.from(hub.token), Buffer.from('\n')]).toString('base64');
      if (urlSafe) b64 = b64.replace(/\+/g, '-').replace(/\//g, '_');
      const file = path.join(dir, 'extra_config.json');
      fs.writeFileSync(file, JSON.stringify({ auth: `Basic ${b64}` }));
      const e = await expectHubError(hubPush(dir, `tester/b64-${prefix}`, opts()), hub.token);
      expect(e.message).toBe(`${file}: refusing to upload a file that contains your Hugging Face token (base64-encoded); remove it from the directory`);
    }
    expectNothingUploaded();
  });

  it('a symlink out of the pushed directory is refused, naming it (even when the target holds no token)', async () => {
    const dir = adapter('link-out');
    const outside = path.join(makeTmpDir('outside'), 'credentials');
    fs.writeFileSync(outside, 'not a token, but not yours to publish either\n');
    const link = path.join(dir, 'notes.txt');
    fs.symlinkSync(outside, link);
    const e = await expectHubError(hubPush(dir, 'tester/link-out', opts()), hub.token);
    expect(e.message).toBe(`${link}: symlink to ${fs.realpathSync(outside)}, outside the directory being pushed; refusing to upload it (copy the file in if it belongs to the upload)`);
    expectNothingUploaded();
    // a relative link climbing out is the same
    fs.rmSync(link);
    fs.symlinkSync(path.relative(dir, outside), link);
    expect((await expectHubError(hubPush(dir, 'tester/link-out', opts()), hub.token)).message).toContain(`${link}: symlink to`);
  });

  it('a symlink inside the directory, and a pulled snapshot (links into its blobs), still push', async () => {
    const dir = adapter('link-in');
    fs.symlinkSync('adapter_config.json', path.join(dir, 'config_alias.json'));
    const r = await hubPush(dir, 'tester/link-in', opts());
    expect(r.files).toContain('config_alias.json');
    const cache = makeTmpDir('push-snap-cache');
    const pulled = await hubPull('tester/link-in', { endpoint: hub.endpoint, token: hub.token, cacheDir: cache, env: { HOME: work } });
    const again = await hubPush(pulled.snapshotDir, 'tester/link-in-copy', opts());
    expect(again.files).toEqual(expect.arrayContaining(['adapter_config.json', 'adapter_model.safetensors', 'config_alias.json']));
  });
});
