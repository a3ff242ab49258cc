import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { hfHomeDir, resolveEndpoint, resolveToken, tokenFilePath } from '../src/hub/auth.js';
import { hubCacheDir } from '../src/hub/cache-layout.js';
import { HubError, redactSecrets } from '../src/hub/hub-error.js';
import { parseRepo, repoFolderName } from '../src/hub/repo-id.js';
import { validateRemotePath } from '../src/hub/remote-path.js';
import { makeTmpDir } from './helpers/tmpdir.js';

describe('token resolution', () => {
  it('prefers the option, then HF_TOKEN, then HUGGING_FACE_HUB_TOKEN, then the token file', () => {
    const home = makeTmpDir('hub-auth');
    const hfHome = path.join(home, 'hf');
    fs.mkdirSync(hfHome);
    fs.writeFileSync(path.join(hfHome, 'token'), '  hf_fromFile123456789\n');
    const env = { HOME: home, HF_HOME: hfHome, HF_TOKEN: 'hf_fromEnv1234567', HUGGING_FACE_HUB_TOKEN: 'hf_legacy12345678' };
    expect(resolveToken('hf_option12345678', env)).toEqual({ token: 'hf_option12345678', source: 'option' });
    expect(resolveToken(undefined, env)).toEqual({ token: 'hf_fromEnv1234567', source: 'HF_TOKEN' });
    expect(resolveToken(undefined, { ...env, HF_TOKEN: '' })).toEqual({ token: 'hf_legacy12345678', source: 'HUGGING_FACE_HUB_TOKEN' });
    expect(resolveToken(undefined, { HOME: home, HF_HOME: hfHome })).toEqual({ token: 'hf_fromFile123456789', source: path.join(hfHome, 'token') });
    const custom = path.join(home, 'elsewhere');
    fs.writeFileSync(custom, 'hf_customPath12345');
    expect(resolveToken(undefined, { HOME: home, HF_HOME: hfHome, HF_TOKEN_PATH: custom })?.token).toBe('hf_customPath12345');
    // default: ~/.cache/huggingface/token (HOME), or $XDG_CACHE_HOME/huggingface/token
    expect(tokenFilePath({ HOME: home })).toBe(path.join(home, '.cache', 'huggingface', 'token'));
    expect(tokenFilePath({ HOME: home, XDG_CACHE_HOME: path.join(home, 'xdg') })).toBe(path.join(home, 'xdg', 'huggingface', 'token'));
    expect(resolveToken(undefined, { HOME: home })).toBeUndefined();
  });

  it('registers the token so every HubError hides it, whatever its shape', () => {
    const odd = 'corp-secret-Zq81x';
    expect(resolveToken(odd, { HOME: '/nonexistent' })?.source).toBe('option');
    const e = new HubError('auth', `server said: bad token ${odd} and hf_abcdefghijklmnop`);
    expect(e.message).toBe('server said: bad token <redacted> and <redacted>');
    expect(redactSecrets(`x ${odd} y`)).toBe('x <redacted> y');
  });

  it('a token with whitespace inside is refused without echoing it', () => {
    expect(() => resolveToken('hf_abc def', {})).toThrow('the Hugging Face token from option contains whitespace; expected a single word such as hf_...');
  });
});

describe('endpoint and cache directories', () => {
  it('endpoint: option, then HF_ENDPOINT, then huggingface.co; validated', () => {
    expect(resolveEndpoint(undefined, {})).toBe('https://huggingface.co');
    expect(resolveEndpoint(undefined, { HF_ENDPOINT: 'https://hf-mirror.com/' })).toBe('https://hf-mirror.com');
    expect(resolveEndpoint('http://127.0.0.1:9/x/', { HF_ENDPOINT: 'https://hf-mirror.com' })).toBe('http://127.0.0.1:9/x');
    expect(() => resolveEndpoint('ftp://x', {})).toThrow('the endpoint option: "ftp://x" must be an http:// or https:// URL');
    expect(() => resolveEndpoint(undefined, { HF_ENDPOINT: 'not a url' })).toThrow('HF_ENDPOINT: "not a url" is not a URL; expected e.g. https://huggingface.co');
    expect(() => resolveEndpoint('https://u:p@h.example', {})).toThrow('must not contain credentials');
  });

  it('cache: option, HF_HUB_CACHE, HUGGINGFACE_HUB_CACHE, HF_HOME/hub, XDG, ~/.cache', () => {
    expect(hubCacheDir('/a', { HF_HUB_CACHE: '/b' })).toBe('/a');
    expect(hubCacheDir(undefined, { HF_HUB_CACHE: '/b', HF_HOME: '/c' })).toBe('/b');
    expect(hubCacheDir(undefined, { HUGGINGFACE_HUB_CACHE: '/b2', HF_HOME: '/c' })).toBe('/b2');
    expect(hubCacheDir(undefined, { HF_HOME: '/c' })).toBe('/c/hub');
    expect(hubCacheDir(undefined, { HF_HOME: '~/hf', HOME: '/home/u' })).toBe('/home/u/hf/hub');
    expect(hubCacheDir(undefined, { XDG_CACHE_HOME: '/x', HOME: '/home/u' })).toBe('/x/huggingface/hub');
    expect(hubCacheDir(undefined, { HOME: '/home/u' })).toBe('/home/u/.cache/huggingface/hub');
    expect(hfHomeDir({ HOME: '/home/u' })).toBe('/home/u/.cache/huggingface');
  });

  it('repo folder names follow the Python cache', () => {
    expect(repoFolderName(parseRepo('mistralai/Mixtral-8x7B-v0.1'))).toBe('models--mistralai--Mixtral-8x7B-v0.1');
    expect(repoFolderName(parseRepo('gpt2'))).toBe('models--gpt2');
    expect(repoFolderName(parseRepo('datasets/allenai/ai2_arc'))).toBe('datasets--allenai--ai2_arc');
    expect(() => parseRepo('org/a--b')).toThrow('repo "org/a--b": "a--b" is not a valid Hub name');
    expect(() => parseRepo('org/..')).toThrow('is not a valid Hub name');
  });
});

describe('remote path validation', () => {
  const ok = ['config.json', 'a/b/c.safetensors', '.gitattributes', 'dir.with.dots/x', '..hidden', 'a..b', 'spaces in name.txt'];
  const bad: [string, string][] = [
    ['../evil', '".." segment'],
    ['a/../../evil', '".." segment'],
    ['/abs/path', 'absolute path'],
    ['a\\b', 'backslash'],
    ['x\u0000y', 'NUL or control character'],
    ['C:evil', 'drive letter'],
    ['a//b', 'empty path segment'],
    ['a/', 'empty path segment'],
    ['./a', '"." segment'],
    ['', 'empty'],
  ];
  it.each(ok)('accepts %j', (name) => expect(() => validateRemotePath(name, 'repo r')).not.toThrow());
  it.each(bad)('refuses %j (%s)', (name, why) => {
    expect(() => validateRemotePath(name, 'repo r')).toThrow(why);
    expect(() => validateRemotePath(name, 'repo r')).toThrow(/^repo r: refusing remote file name .*; nothing was written$/);
  });
});
