import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { openCheckpoint, shardFileName, writeCheckpoint } from '../src/io/checkpoint.js';
import { pythonJsonDumps } from '../src/io/python-json.js';
import { SafetensorsFile } from '../src/io/safetensors-reader.js';
import type { TensorToWrite } from '../src/io/safetensors-writer.js';
import { makeTmpDir } from './helpers/tmpdir.js';

import { FIXTURES } from './helpers/fixtures.js';

/** bf16 decoded by the IEEE formula from its fields (independent of the bit-shift fast path). */
function bf16ByFormula(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const e = (bits >>> 7) & 0xff;
  const m = bits & 0x7f;
  if (e === 0xff) return m === 0 ? sign * Infinity : NaN;
  if (e === 0) return sign * m * 2 ** -133;
  return sign * 2 ** (e - 127) * (1 + m / 128);
}

describe('reading the fixtures', () => {
  it('tiny-llama: bf16, sharded, tied (no lm_head); upcast matches a manual decode of the raw bytes', () => {
    const ck = openCheckpoint(path.join(FIXTURES, 'tiny-llama'));
    const names = ck.names();
    expect(names.length).toBe(20);
    expect(names).not.toContain('lm_head.weight');
    expect(ck.files.map((f) => path.basename(f))).toEqual(['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors']);
    const shapes: Record<string, number[]> = {
      'model.embed_tokens.weight': [320, 64],
      'model.layers.0.self_attn.q_proj.weight': [64, 64],
      'model.layers.0.self_attn.k_proj.weight': [32, 64], // 2 kv heads x head_dim 16
      'model.layers.1.self_attn.v_proj.weight': [32, 64],
      'model.layers.1.self_attn.o_proj.weight': [64, 64],
      'model.layers.0.mlp.gate_proj.weight': [96, 64],
      'model.layers.0.mlp.down_proj.weight': [64, 96],
      'model.layers.1.input_layernorm.weight': [64],
      'model.norm.weight': [64],
    };
    for (const [name, shape] of Object.entries(shapes)) expect([name, ...ck.info(name).shape]).toEqual([name, ...shape]);
    for (const name of names) expect(ck.dtypeOf(name)).toBe('BF16');
    expect(path.basename(ck.info('model.norm.weight').file)).toBe('model-00002-of-00002.safetensors');
    expect(ck.totalBytes).toBe(164480); // the index's metadata.total_size

    for (const name of ['model.embed_tokens.weight', 'model.layers.1.mlp.up_proj.weight', 'model.norm.weight']) {
      const raw = ck.readRaw(name);
      const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
      const values = ck.readFloat32(name);
      expect(values.length * 2).toBe(raw.byteLength);
      let mismatches = 0;
      for (let i = 0; i < values.length; i++) if (values[i] !== bf16ByFormula(view.getUint16(2 * i, true))) mismatches++;
      expect(mismatches).toBe(0);
      const into = new Float32Array(values.length);
      ck.readFloat32Into(name, into);
      expect(into).toEqual(values);
    }
    // Real weights, not zeros: the RMSNorm weights and embeddings are finite and not all equal.
    const emb = ck.readFloat32('model.embed_tokens.weight');
    expect(emb.every(Number.isFinite)).toBe(true);
    expect(new Set(emb).size).toBeGreaterThan(100);
    ck.close();
  });

  it('tiny-mixtral: f32, sharded, 4 experts, untied', () => {
    const ck = openCheckpoint(path.join(FIXTURES, 'tiny-mixtral'));
    const names = ck.names();
    expect(names.length).toBe(41); // 2 embeddings/head + norm + 2 x (4 attn + 2 norms + gate + 4 x 3 experts)
    expect(names).toContain('lm_head.weight');
    expect(ck.info('model.layers.1.block_sparse_moe.gate.weight').shape).toEqual([4, 64]);
    expect(ck.info('model.layers.0.block_sparse_moe.experts.3.w1.weight').shape).toEqual([96, 64]);
    expect(ck.info('model.layers.0.block_sparse_moe.experts.3.w2.weight').shape).toEqual([64, 96]);
    expect(ck.info('lm_head.weight').shape).toEqual([320, 64]);
    for (const name of names) expect(ck.dtypeOf(name)).toBe('F32');
    expect(path.basename(ck.info('model.layers.0.self_attn.v_proj.weight').file)).toBe('model-00002-of-00002.safetensors');
    const raw = ck.readRaw('model.layers.1.block_sparse_moe.gate.weight');
    const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    const values = ck.readFloat32('model.layers.1.block_sparse_moe.gate.weight');
    expect([...values]).toEqual(Array.from({ length: 256 }, (_, i) => dv.getFloat32(4 * i, true)));
    ck.close();
  });
});

describe('writing checkpoints', () => {
  const f32 = (name: string, n: number, base = 0): TensorToWrite => ({
    name,
    dtype: 'F32',
    shape: [n],
    data: Float32Array.from({ length: n }, (_, i) => base + i * 0.25),
  });

  it('shards exactly like transformers (order kept, oversize tensor alone in place) and reads back', async () => {
    const dir = makeTmpDir('ck-shard');
    // Sizes 40, 40, 100 (> max), 28, 8 bytes with max 64: shards [a], [c], [b], [d, e].
    const tensors = [f32('a', 10, 1), f32('b', 10, 2), f32('c', 25, 3), f32('d', 7, 4), f32('e', 2, 5)];
    const result = await writeCheckpoint(dir, tensors, { maxShardBytes: 64 });
    const files = [1, 2, 3, 4].map((i) => shardFileName(i, 4));
    expect(files[0]).toBe('model-00001-of-00004.safetensors');
    expect(result.files).toEqual(files);
    expect(result.totalSize).toBe(216);
    expect(fs.readdirSync(dir).sort()).toEqual([...files, 'model.safetensors.index.json']);
    const indexText = fs.readFileSync(path.join(dir, 'model.safetensors.index.json'), 'utf8');
    expect(indexText).toBe(
      '{\n  "metadata": {\n    "total_size": 216\n  },\n  "weight_map": {\n' +
        `    "a": "${files[0]}",\n    "b": "${files[2]}",\n    "c": "${files[1]}",\n    "d": "${files[3]}",\n    "e": "${files[3]}"\n  }\n}\n`,
    );
    const shard4 = SafetensorsFile.open(path.join(dir, files[3]!));
    expect(shard4.metadata).toEqual({ format: 'pt' });
    expect(shard4.names()).toEqual(['d', 'e']);
    shard4.close();

    const ck = openCheckpoint(dir);
    expect(ck.names()).toEqual(['a', 'c', 'b', 'd', 'e']);
    for (const t of tensors) {
      expect(ck.readRaw(t.name)).toEqual(new Uint8Array((t.data as Float32Array).buffer));
      expect(ck.readFloat32(t.name)).toEqual(t.data);
    }
    ck.close();
  });

  it('writes every dtype sharded and unsharded, byte-exact', async () => {
    const tensors: TensorToWrite[] = [
      { name: 'f64', dtype: 'F64', shape: [2], data: new Float64Array([0.1, -3]) },
      { name: 'f32', dtype: 'F32', shape: [2], data: new Float32Array([0.1, -3]) },
      { name: 'f16', dtype: 'F16', shape: [2], data: new Uint16Array([0x2e66, 0xc200]) },
      { name: 'bf16', dtype: 'BF16', shape: [2], data: new Uint16Array([0x3dcd, 0xc040]) },
      { name: 'i64', dtype: 'I64', shape: [2], data: new BigInt64Array([-(2n ** 62n), 7n]) },
      { name: 'i32', dtype: 'I32', shape: [2], data: new Int32Array([-9, 9]) },
      { name: 'i16', dtype: 'I16', shape: [2], data: new Int16Array([-9, 9]) },
      { name: 'i8', dtype: 'I8', shape: [2], data: new Int8Array([-9, 9]) },
      { name: 'u8', dtype: 'U8', shape: [2], data: new Uint8Array([9, 250]) },
      { name: 'bool', dtype: 'BOOL', shape: [2], data: new Uint8Array([0, 1]) },
    ];
    for (const maxShardBytes of [1_000_000, 8]) {
      const dir = makeTmpDir('ck-dtypes');
      const result = await writeCheckpoint(dir, tensors, { maxShardBytes });
      // With 8 bytes: [f64] (16 > 8: alone, at once), [f32], [i64] (alone, while [f16, bf16] is still open),
      // [f16, bf16], [i32], [i16, i8, u8], [bool].
      expect(result.files.length).toBe(maxShardBytes === 8 ? 7 : 1);
      if (maxShardBytes === 8) {
        const shardOf = { f64: 1, f32: 2, i64: 3, f16: 4, bf16: 4, i32: 5, i16: 6, i8: 6, u8: 6, bool: 7 };
        expect(result.weightMap).toEqual(Object.fromEntries(Object.entries(shardOf).map(([n, i]) => [n, shardFileName(i, 7)])));
      }
      if (maxShardBytes !== 8) expect(fs.readdirSync(dir)).toEqual(['model.safetensors']);
      const ck = openCheckpoint(dir);
      expect(ck.indexPath === null).toBe(maxShardBytes !== 8);
      for (const t of tensors) {
        expect([t.name, ck.dtypeOf(t.name)]).toEqual([t.name, t.dtype]);
        const d = t.data as ArrayBufferView;
        expect([t.name, ...ck.readRaw(t.name)]).toEqual([t.name, ...new Uint8Array(d.buffer, d.byteOffset, d.byteLength)]);
      }
      expect(() => ck.readInt32('i64')).toThrow('I64 value -4611686018427387904 at element 0 does not fit in int32');
      expect([...ck.readFloat32('bf16')]).toEqual([0.10009765625, -3]);
      ck.close();
    }
  });

  it('stores floats in the requested dtype and counts total_size in that dtype', async () => {
    const dir = makeTmpDir('ck-dtype');
    const result = await writeCheckpoint(dir, [f32('w', 6), { name: 'ids', dtype: 'I32', shape: [2], data: new Int32Array([1, 2]) }], {
      dtype: 'BF16',
      metadata: { source: 'test' },
    });
    expect(result.totalSize).toBe(6 * 2 + 2 * 4);
    const ck = openCheckpoint(dir);
    expect(ck.dtypeOf('w')).toBe('BF16');
    expect(ck.dtypeOf('ids')).toBe('I32');
    expect([...ck.readFloat32('w')]).toEqual([0, 0.25, 0.5, 0.75, 1, 1.25]);
    ck.close();
    const f = SafetensorsFile.open(path.join(dir, 'model.safetensors'));
    expect(f.metadata).toEqual({ format: 'pt', source: 'test' });
    f.close();
  });

  it('streams a generator shard by shard, producing each tensor\'s data only when it is written', async () => {
    const dir = makeTmpDir('ck-stream');
    const events: string[] = [];
    async function* tensors(): AsyncGenerator<TensorToWrite> {
      for (let i = 0; i < 6; i++) {
        const tempShards = fs.readdirSync(dir).filter((f) => f.startsWith('.shard-')).length;
        events.push(`yield ${i} (${tempShards} shards on disk)`);
        yield {
          name: `layer.${i}.weight`,
          dtype: 'F32',
          shape: [16],
          data: () => {
            events.push(`data ${i}`);
            return Float32Array.from({ length: 16 }, (_, j) => i * 100 + j);
          },
        };
      }
    }
    const result = await writeCheckpoint(dir, tensors(), { maxShardBytes: 128 }); // two 64-byte tensors per shard
    expect(result.files).toEqual([shardFileName(1, 3), shardFileName(2, 3), shardFileName(3, 3)]);
    expect(events).toEqual([
      'yield 0 (0 shards on disk)', 'yield 1 (0 shards on disk)', 'yield 2 (0 shards on disk)', 'data 0', 'data 1',
      'yield 3 (1 shards on disk)', 'yield 4 (1 shards on disk)', 'data 2', 'data 3',
      'yield 5 (2 shards on disk)', 'data 4', 'data 5',
    ]);
    const ck = openCheckpoint(dir);
    expect([...ck.readFloat32('layer.5.weight').subarray(0, 3)]).toEqual([500, 501, 502]);
    ck.close();
  });

  it('replaces a previous save: stale model.safetensors / shards / index are removed', async () => {
    const dir = makeTmpDir('ck-stale');
    fs.writeFileSync(path.join(dir, 'config.json'), '{}');
    await writeCheckpoint(dir, [f32('a', 4)]);
    expect(fs.readdirSync(dir).sort()).toEqual(['config.json', 'model.safetensors']);
    await writeCheckpoint(dir, [f32('a', 4), f32('b', 4), f32('c', 4)], { maxShardBytes: 16 });
    expect(fs.readdirSync(dir).sort()).toEqual(['config.json', ...[1, 2, 3].map((i) => shardFileName(i, 3)), 'model.safetensors.index.json']);
    await writeCheckpoint(dir, [f32('a', 4), f32('b', 4)], { maxShardBytes: 16 });
    expect(fs.readdirSync(dir).sort()).toEqual(['config.json', shardFileName(1, 2), shardFileName(2, 2), 'model.safetensors.index.json']);
    await writeCheckpoint(dir, [f32('z', 4)]);
    expect(fs.readdirSync(dir).sort()).toEqual(['config.json', 'model.safetensors']);
    const ck = openCheckpoint(dir);
    expect(ck.names()).toEqual(['z']);
    ck.close();
  });

  it('leaves nothing behind when a tensor fails midway, and keeps what was there', async () => {
    const dir = makeTmpDir('ck-fail');
    await writeCheckpoint(dir, [f32('old', 2)]);
    const before = fs.readFileSync(path.join(dir, 'model.safetensors'));
    const tensors: TensorToWrite[] = [
      f32('a', 4),
      f32('b', 4),
      { name: 'c', dtype: 'F32', shape: [4], data: () => { throw new Error('source read failed'); } },
      f32('d', 4),
    ];
    await expect(writeCheckpoint(dir, tensors, { maxShardBytes: 16 })).rejects.toThrow('source read failed');
    expect(fs.readdirSync(dir)).toEqual(['model.safetensors']);
    expect(fs.readFileSync(path.join(dir, 'model.safetensors'))).toEqual(before);
    // Bad input is caught before anything is renamed too.
    await expect(writeCheckpoint(dir, [f32('a', 4), f32('a', 4)])).rejects.toThrow('tensor "a": duplicate tensor name');
    await expect(writeCheckpoint(dir, [{ name: 'x', dtype: 'F32', shape: [3], data: new Float32Array(2) }])).rejects.toThrow(
      'tensor "x": data has 2 elements but shape [3] of F32 needs 3 elements (12 bytes)',
    );
    expect(fs.readdirSync(dir)).toEqual(['model.safetensors']);
  });
});

describe('checkpoint errors', () => {
  async function sharded(): Promise<string> {
    const dir = makeTmpDir('ck-bad');
    await writeCheckpoint(dir, [
      { name: 'a', dtype: 'F32', shape: [4], data: new Float32Array(4) },
      { name: 'b', dtype: 'F32', shape: [4], data: new Float32Array(4) },
    ], { maxShardBytes: 16 });
    return dir;
  }

  it('an index naming a missing shard', async () => {
    const dir = await sharded();
    fs.rmSync(path.join(dir, shardFileName(2, 2)));
    const index = path.join(dir, 'model.safetensors.index.json');
    expect(() => openCheckpoint(dir)).toThrow(
      `${index}: names shard "model-00002-of-00002.safetensors" (for 1 tensors, e.g. "b") but ${path.join(dir, shardFileName(2, 2))} does not exist`,
    );
  });

  it('a weight_map tensor missing from its shard', async () => {
    const dir = await sharded();
    const index = path.join(dir, 'model.safetensors.index.json');
    const json = JSON.parse(fs.readFileSync(index, 'utf8'));
    json.weight_map.b = shardFileName(1, 2);
    fs.writeFileSync(index, JSON.stringify(json));
    expect(() => openCheckpoint(dir)).toThrow(`${index}: tensor "b": weight_map puts the tensor in shard "model-00001-of-00002.safetensors", which has no such tensor`);
  });

  it('a bad index, a bad shard, a missing directory or weights, an unknown tensor', async () => {
    const dir = await sharded();
    const index = path.join(dir, 'model.safetensors.index.json');
    fs.writeFileSync(index, '{"weight_map": ');
    expect(() => openCheckpoint(dir)).toThrow(new RegExp(`^${index.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: invalid JSON: `));
    fs.writeFileSync(index, '{"metadata": {}}');
    expect(() => openCheckpoint(dir)).toThrow(`${index}: "weight_map" must be an object mapping tensor names to shard files`);
    fs.writeFileSync(index, '{"weight_map": {"a": "../elsewhere.safetensors"}}');
    expect(() => openCheckpoint(dir)).toThrow('must be a file name inside the checkpoint directory');
    fs.writeFileSync(index, JSON.stringify({ weight_map: { a: shardFileName(1, 2), b: shardFileName(2, 2) } }));
    const shard2 = path.join(dir, shardFileName(2, 2));
    fs.writeFileSync(shard2, Buffer.alloc(4));
    expect(() => openCheckpoint(dir)).toThrow(`${shard2}: truncated`);

    expect(() => openCheckpoint(path.join(dir, 'absent'))).toThrow(`${path.join(dir, 'absent')}: checkpoint directory not found`);
    const emptyDir = makeTmpDir('ck-empty');
    expect(() => openCheckpoint(emptyDir)).toThrow(`${emptyDir}: no model.safetensors or model.safetensors.index.json`);

    const ok = await sharded();
    const ck = openCheckpoint(ok);
    expect(() => ck.readFloat32('zz')).toThrow(`${path.join(ok, 'model.safetensors.index.json')}: tensor "zz": no such tensor in the checkpoint (it holds 2)`);
    ck.close();
  });
});

describe('python-compatible JSON', () => {
  it('matches json.dumps(indent=2, sort_keys=True) byte for byte (code-point order, ensure_ascii)', () => {
    const value = {
      metadata: { total_size: 12 },
      weight_map: { b: 'x', a: 'y', '10': 'z', '9': 'z', 'é': 'q', '\u{1F600}': 'w', '\ufb01': 'v', 'e\u007f\n': 'u' },
    };
    // Output of Python 3's json.dumps(value, indent=2, sort_keys=True) for the same value.
    expect(pythonJsonDumps(value)).toBe(
      '{\n  "metadata": {\n    "total_size": 12\n  },\n  "weight_map": {\n    "10": "z",\n    "9": "z",\n    "a": "y",\n    "b": "x",\n' +
        '    "e\\u007f\\n": "u",\n    "\\u00e9": "q",\n    "\\ufb01": "v",\n    "\\ud83d\\ude00": "w"\n  }\n}',
    );
    expect(pythonJsonDumps({ a: [], b: {}, c: [1, null, true] })).toBe('{\n  "a": [],\n  "b": {},\n  "c": [\n    1,\n    null,\n    true\n  ]\n}');
  });
});
