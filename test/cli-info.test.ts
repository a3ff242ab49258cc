/**
 * `moe-tune info` through the CLI: counts from config arithmetic, dtypes and bytes of the
 * reference fixtures, and every bad-checkpoint case as one error line naming the file.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { expectOneErrorLine, runCli, runCliJson } from './helpers/cli.js';
import { FIXTURES } from './helpers/fixtures.js';
import { tinyMixtralConfig, writeTinyCheckpoint } from './helpers/tiny-model.js';
import { makeTmpDir } from './helpers/tmpdir.js';

interface InfoJson {
  architecture: string;
  layers: number;
  experts: { count: number; top_k: number; null_experts: number; ternary_rows: number | null; moe_layers: number[] } | null;
  parameters: { total: number; active_per_token: number; expert: number; active_basis: string };
  dtypes: Record<string, number>;
  checkpoint_bytes: number;
  files: string[];
  backend: string;
}

/** Parameters of a Llama / Mixtral config by hand: [total, expert]. */
function countByHand(c: { V: number; D: number; F: number; L: number; H: number; Hkv: number; Dh: number; N: number; tied: boolean }): [number, number] {
  const attn = c.D * c.H * c.Dh * 2 + c.D * c.Hkv * c.Dh * 2;
  const ffn = c.N > 0 ? c.N * 3 * c.D * c.F + c.N * c.D : 3 * c.D * c.F;
  const perLayer = attn + 2 * c.D + ffn;
  const total = c.L * perLayer + c.D + c.V * c.D * (c.tied ? 1 : 2);
  return [total, c.L * c.N * 3 * c.D * c.F];
}

describe('moe-tune info on the reference fixtures', () => {
  it('tiny-mixtral: experts, counts total / active (k/N of expert params), F32 storage', () => {
    const info = runCliJson<InfoJson>(['info', '--model', path.join(FIXTURES, 'tiny-mixtral'), '--json']);
    const [total, expert] = countByHand({ V: 320, D: 64, F: 96, L: 2, H: 4, Hkv: 2, Dh: 16, N: 4, tied: false });
    expect(total).toBe(213_824);
    expect(info.architecture).toBe('MixtralForCausalLM');
    expect(info.layers).toBe(2);
    expect(info.experts).toMatchObject({ count: 4, top_k: 2, null_experts: 0, ternary_rows: null, moe_layers: [0, 1] });
    expect(info.parameters.total).toBe(total);
    expect(info.parameters.expert).toBe(expert);
    expect(info.parameters.active_per_token).toBe(total - expert + (expert * 2) / 4);
    expect(info.parameters.active_basis).toMatch(/2\/4 of the routed expert parameters/);
    expect(info.dtypes).toEqual({ F32: 41 });
    expect(info.checkpoint_bytes).toBe(total * 4);
    expect(info.files).toHaveLength(2);
    expect(info.backend).toBe('js');
  });

  it('tiny-llama: dense, tied, BF16', () => {
    const info = runCliJson<InfoJson>(['info', '--model', path.join(FIXTURES, 'tiny-llama'), '--json']);
    const [total] = countByHand({ V: 320, D: 64, F: 96, L: 2, H: 4, Hkv: 2, Dh: 16, N: 0, tied: true });
    expect(info.experts).toBeNull();
    expect(info.parameters.total).toBe(total);
    expect(info.parameters.active_per_token).toBe(total);
    expect(info.dtypes).toEqual({ BF16: 20 });
    expect(info.checkpoint_bytes).toBe(total * 2);
  });

  it('human-readable output names the parts', () => {
    const r = runCli(['info', '--model', path.join(FIXTURES, 'tiny-mixtral')]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/architecture\s+MixtralForCausalLM/);
    expect(r.stdout).toMatch(/213,824 total, 140,096 active per token/);
    expect(r.stdout).toMatch(/backend\s+js/);
  });
});

// ------------------------------------------------------------------------------------------------ bad checkpoints

interface Parts {
  header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] } | Record<string, string>>;
  data: Buffer;
}

function readParts(file: string): Parts {
  const buf = fs.readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  return { header: JSON.parse(buf.subarray(8, 8 + n).toString('utf8')), data: buf.subarray(8 + n) };
}

function writeRaw(file: string, headerText: string, data: Buffer, lengthOverride?: bigint): void {
  const h = Buffer.from(headerText, 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(lengthOverride ?? BigInt(h.byteLength));
  fs.writeFileSync(file, Buffer.concat([len, h, data]));
}

describe('moe-tune info: every bad checkpoint is one error line naming the file', () => {
  const root = makeTmpDir('cli-info-bad');
  const good = path.join(root, 'good');
  const sharded = path.join(root, 'sharded');
  let weightNames: string[] = [];

  beforeAll(async () => {
    await writeTinyCheckpoint(good, tinyMixtralConfig());
    await writeTinyCheckpoint(sharded, tinyMixtralConfig(), { maxShardBytes: 60_000 });
    weightNames = Object.keys(readParts(path.join(good, 'model.safetensors')).header).filter((k) => k !== '__metadata__');
  });

  /** A copy of the good model whose model.safetensors is rewritten by `mutate`. */
  function badCopy(name: string, mutate: (file: string, parts: Parts) => void): { dir: string; file: string } {
    const dir = path.join(root, name);
    fs.cpSync(good, dir, { recursive: true });
    const file = path.join(dir, 'model.safetensors');
    mutate(file, readParts(file));
    return { dir, file };
  }

  function expectInfoError(dir: string, file: string, pattern: RegExp): void {
    const line = expectOneErrorLine(runCli(['info', '--model', dir]));
    expect(line).toContain(file);
    expect(line).toMatch(pattern);
  }

  it('truncated file', () => {
    const { dir, file } = badCopy('truncated', (f) => {
      const buf = fs.readFileSync(f);
      fs.writeFileSync(f, buf.subarray(0, buf.length - 1000));
    });
    expectInfoError(dir, file, /truncat|past the end|out of range|bytes/i);
  });

  it('header length past the end of the file', () => {
    const { dir, file } = badCopy('header-length', (f, p) => writeRaw(f, JSON.stringify(p.header), p.data, 10n ** 12n));
    expectInfoError(dir, file, /header length .* past the end/);
  });

  it('offsets out of range', () => {
    const { dir, file } = badCopy('offsets-range', (f, p) => {
      const last = weightNames[weightNames.length - 1]!;
      const t = p.header[last] as { data_offsets: [number, number] };
      const len = t.data_offsets[1] - t.data_offsets[0];
      t.data_offsets = [p.data.length, p.data.length + len];
      writeRaw(f, JSON.stringify(p.header), p.data);
    });
    expectInfoError(dir, file, /offset|range|past the end/i);
  });

  it('overlapping offsets', () => {
    const { dir, file } = badCopy('offsets-overlap', (f, p) => {
      // the second tensor starts inside the first
      const byStart = weightNames.map((n) => [n, p.header[n] as { data_offsets: [number, number] }] as const)
        .sort((a, b) => a[1].data_offsets[0] - b[1].data_offsets[0]);
      const [, first] = byStart[0]!;
      const [, second] = byStart[1]!;
      const len = second.data_offsets[1] - second.data_offsets[0];
      second.data_offsets = [first.data_offsets[0] + 4, first.data_offsets[0] + 4 + len];
      writeRaw(f, JSON.stringify(p.header), p.data);
    });
    expectInfoError(dir, file, /overlap|gap|hole|offset/i);
  });

  it('unknown dtype', () => {
    const { dir, file } = badCopy('dtype', (f, p) => {
      (p.header[weightNames[0]!] as { dtype: string }).dtype = 'F9';
      writeRaw(f, JSON.stringify(p.header), p.data);
    });
    expectInfoError(dir, file, /dtype.*F9|F9.*dtype/);
  });

  it('shape x dtype size mismatch', () => {
    const { dir, file } = badCopy('shape', (f, p) => {
      const t = p.header[weightNames[0]!] as { shape: number[] };
      t.shape = [...t.shape.slice(0, -1), t.shape[t.shape.length - 1]! + 1];
      writeRaw(f, JSON.stringify(p.header), p.data);
    });
    expectInfoError(dir, file, /shape|bytes|size/i);
  });

  it('invalid JSON header', () => {
    const { dir, file } = badCopy('json', (f, p) => writeRaw(f, JSON.stringify(p.header).slice(0, -3), p.data));
    expectInfoError(dir, file, /invalid JSON/);
  });

  it('index naming a missing shard', () => {
    const dir = path.join(root, 'missing-shard');
    fs.cpSync(sharded, dir, { recursive: true });
    const shards = fs.readdirSync(dir).filter((n) => /^model-\d+-of-\d+\.safetensors$/.test(n)).sort();
    expect(shards.length).toBeGreaterThan(1);
    fs.rmSync(path.join(dir, shards[1]!));
    expectInfoError(dir, path.join(dir, 'model.safetensors.index.json'), new RegExp(`${shards[1]!.replace(/\./g, '\\.')}.*does not exist`));
  });

  it('missing model directory, missing config.json, invalid config', () => {
    expect(expectOneErrorLine(runCli(['info', '--model', path.join(root, 'nope')]))).toMatch(/nope: model directory not found/);
    const noConfig = path.join(root, 'no-config');
    fs.cpSync(good, noConfig, { recursive: true });
    fs.rmSync(path.join(noConfig, 'config.json'));
    expect(expectOneErrorLine(runCli(['info', '--model', noConfig]))).toContain(path.join(noConfig, 'config.json'));
    const badConfig = path.join(root, 'bad-config');
    fs.cpSync(good, badConfig, { recursive: true });
    fs.writeFileSync(path.join(badConfig, 'config.json'), JSON.stringify(tinyMixtralConfig({ hidden_act: 'gelu' })));
    expect(expectOneErrorLine(runCli(['info', '--model', badConfig]))).toMatch(/config\.json: unsupported config: hidden_act 'gelu'/);
  });

  it('--debug adds the stack trace', () => {
    const r = runCli(['info', '--model', path.join(root, 'nope'), '--debug']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/^moe-tune: .*model directory not found\n/);
    expect(r.stderr).toMatch(/\n\s+at /);
  });
});
