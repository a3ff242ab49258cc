import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { SafetensorsFile } from '../src/io/safetensors-reader.js';
import { writeSafetensors, type TensorToWrite } from '../src/io/safetensors-writer.js';
import { makeTmpDir } from './helpers/tmpdir.js';

import { FIXTURES } from './helpers/fixtures.js';

/**
 * Bytes of a file written by the reference implementation (safetensors 0.8.0, `safetensors.numpy.save_file` with
 * metadata {"format": "pt"}) from the tensors in `goldenTensors` below.
 */
const GOLDEN_HEX =
  '18030000000000007b225f5f6d657461646174615f5f223a7b22666f726d6174223a227074227d2c22772e693634223a7b226474797065223a22493634222c227368617065223a5b325d2c22646174615f6f666673657473223a5b302c31365d7d2c22772e663634223a7b226474797065223a22463634222c227368617065223a5b325d2c22646174615f6f666673657473223a5b31362c33325d7d2c22772e663332223a7b226474797065223a22463332222c227368617065223a5b322c335d2c22646174615f6f666673657473223a5b33322c35365d7d2c22c3a9223a7b226474797065223a22463332222c227368617065223a5b302c335d2c22646174615f6f666673657473223a5b35362c35365d7d2c227363616c6172223a7b226474797065223a22493332222c227368617065223a5b5d2c22646174615f6f666673657473223a5b35362c36305d7d2c22772e693332223a7b226474797065223a22493332222c227368617065223a5b315d2c22646174615f6f666673657473223a5b36302c36345d7d2c22772e663136223a7b226474797065223a22463136222c227368617065223a5b335d2c22646174615f6f666673657473223a5b36342c37305d7d2c22772e693136223a7b226474797065223a22493136222c227368617065223a5b325d2c22646174615f6f666673657473223a5b37302c37345d7d2c22772e6938223a7b226474797065223a224938222c227368617065223a5b335d2c22646174615f6f666673657473223a5b37342c37375d7d2c223130223a7b226474797065223a225538222c227368617065223a5b315d2c22646174615f6f666673657473223a5b37372c37385d7d2c2239223a7b226474797065223a225538222c227368617065223a5b315d2c22646174615f6f666673657473223a5b37382c37395d7d2c22772e7538223a7b226474797065223a225538222c227368617065223a5b315d2c22646174615f6f666673657473223a5b37392c38305d7d2c22772e626f6f6c223a7b226474797065223a22424f4f4c222c227368617065223a5b335d2c22646174615f6f666673657473223a5b38302c38335d7d7d20202020fdffffffffffffff0000000000010000000000000000f83f00000000000002c00000803f0000004000004040000080400000a0400000c04007000000f9ffffff003800bcff7b2c01d4feff01020102ff010001';

function goldenTensors(): TensorToWrite[] {
  return [
    { name: 'w.f64', dtype: 'F64', shape: [2], data: new Float64Array([1.5, -2.25]) },
    { name: 'w.f32', dtype: 'F32', shape: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, 6]) },
    { name: 'w.f16', dtype: 'F16', shape: [3], data: new Float32Array([0.5, -1, 65504]) }, // converted on write
    { name: 'w.i64', dtype: 'I64', shape: [2], data: new BigInt64Array([-3n, 2n ** 40n]) },
    { name: 'w.i32', dtype: 'I32', shape: [1], data: new Int32Array([-7]) },
    { name: 'w.i16', dtype: 'I16', shape: [2], data: new Int16Array([300, -300]) },
    { name: 'w.i8', dtype: 'I8', shape: [3], data: new Int8Array([-1, 1, 2]) },
    { name: 'w.u8', dtype: 'U8', shape: [1], data: new Uint8Array([255]) },
    { name: 'w.bool', dtype: 'BOOL', shape: [3], data: new Uint8Array([1, 0, 1]) },
    { name: '10', dtype: 'U8', shape: [1], data: new Uint8Array([1]) },
    { name: '9', dtype: 'U8', shape: [1], data: new Uint8Array([2]) },
    { name: 'é', dtype: 'F32', shape: [0, 3], data: new Float32Array(0) },
    { name: 'scalar', dtype: 'I32', shape: [], data: new Int32Array([7]) },
  ];
}

function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

describe('safetensors writer', () => {
  it('writes byte-identical output to the reference implementation (order, header, padding, data)', () => {
    const dir = makeTmpDir('st-golden');
    const file = path.join(dir, 'golden.safetensors');
    const written = writeSafetensors(file, goldenTensors(), { format: 'pt' });
    const bytes = fs.readFileSync(file);
    expect(bytes.toString('hex')).toBe(GOLDEN_HEX);
    expect(written.byteLength).toBe(bytes.byteLength);
    expect(written.names).toEqual(['w.i64', 'w.f64', 'w.f32', 'é', 'scalar', 'w.i32', 'w.f16', 'w.i16', 'w.i8', '10', '9', 'w.u8', 'w.bool']);
    expect(fs.readdirSync(dir)).toEqual(['golden.safetensors']); // no temp file left
  });

  it('re-writes both fixture shards byte for byte from what it reads', () => {
    const dir = makeTmpDir('st-fixture');
    for (const model of ['tiny-llama', 'tiny-mixtral']) {
      for (const shard of ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors']) {
        const src = path.join(FIXTURES, model, shard);
        const f = SafetensorsFile.open(src);
        const out = path.join(dir, `${model}-${shard}`);
        writeSafetensors(out, f.names().map((name) => ({ ...f.info(name), name, data: f.readRaw(name) })), f.metadata);
        f.close();
        expect(Buffer.compare(fs.readFileSync(out), fs.readFileSync(src))).toBe(0);
      }
    }
  });

  it('accepts a Map, pads the header to 8 bytes with spaces, and omits __metadata__ when none is given', () => {
    const dir = makeTmpDir('st-map');
    const file = path.join(dir, 'm.safetensors');
    writeSafetensors(file, new Map([['a', { dtype: 'F32' as const, shape: [1], data: new Float32Array([2]) }]]));
    const bytes = fs.readFileSync(file);
    const n = Number(bytes.readBigUInt64LE(0));
    expect(n % 8).toBe(0);
    const header = bytes.subarray(8, 8 + n).toString('utf8');
    expect(header).toBe('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}'.padEnd(n, ' '));
  });
});

describe('safetensors round trip', () => {
  const values = [0, 1, -1, 0.5, -2.75, 3.140625, 65504, -65504, 2 ** -24, 1e-3, 123.456, -7.875e-5];

  function everyDtype(): TensorToWrite[] {
    const f = new Float32Array(values);
    return [
      { name: 'f64', dtype: 'F64', shape: [3, 4], data: new Float64Array([...values.slice(0, 11), 1 / 3]) },
      { name: 'f32', dtype: 'F32', shape: [3, 4], data: f },
      { name: 'f16', dtype: 'F16', shape: [4, 3], data: f },
      { name: 'bf16', dtype: 'BF16', shape: [2, 6], data: f },
      { name: 'f16.raw', dtype: 'F16', shape: [2], data: new Uint16Array([0x3c00, 0x7e01]) },
      { name: 'bf16.raw', dtype: 'BF16', shape: [2], data: new Uint16Array([0x3f80, 0xff81]) },
      { name: 'i64', dtype: 'I64', shape: [4], data: new BigInt64Array([-1n, 0n, 2147483647n, -2147483648n]) },
      { name: 'i64.from.i32', dtype: 'I64', shape: [2], data: new Int32Array([-5, 6]) },
      { name: 'i32', dtype: 'I32', shape: [3], data: new Int32Array([-(2 ** 31), 2 ** 31 - 1, 42]) },
      { name: 'i16', dtype: 'I16', shape: [2], data: new Int16Array([-32768, 32767]) },
      { name: 'i8', dtype: 'I8', shape: [2], data: new Int8Array([-128, 127]) },
      { name: 'u8', dtype: 'U8', shape: [2], data: new Uint8Array([0, 255]) },
      { name: 'bool', dtype: 'BOOL', shape: [2, 2], data: new Uint8Array([1, 0, 0, 1]) },
      { name: 'empty', dtype: 'BF16', shape: [0], data: new Float32Array(0) },
      { name: 'scalar', dtype: 'F64', shape: [], data: new Float64Array([Math.PI]) },
      { name: 'lazy', dtype: 'F32', shape: [2], data: () => new Float32Array([9, 10]) },
    ];
  }

  it('every dtype reads back byte-exact and value-exact', () => {
    const dir = makeTmpDir('st-roundtrip');
    const file = path.join(dir, 'all.safetensors');
    writeSafetensors(file, everyDtype(), { note: 'round trip', format: 'pt' });
    const f = SafetensorsFile.open(file);
    expect(f.metadata).toEqual({ format: 'pt', note: 'round trip' });
    expect(new Set(f.names())).toEqual(new Set(everyDtype().map((t) => t.name)));

    // Byte-exact where the data is already in the stored dtype.
    expect(f.readRaw('f64')).toEqual(bytesOf(new Float64Array([...values.slice(0, 11), 1 / 3])));
    expect(f.readRaw('f32')).toEqual(bytesOf(new Float32Array(values)));
    expect(f.readRaw('f16.raw')).toEqual(bytesOf(new Uint16Array([0x3c00, 0x7e01])));
    expect(f.readRaw('bf16.raw')).toEqual(bytesOf(new Uint16Array([0x3f80, 0xff81])));
    expect(f.readRaw('i64')).toEqual(bytesOf(new BigInt64Array([-1n, 0n, 2147483647n, -2147483648n])));
    expect(f.readRaw('i64.from.i32')).toEqual(bytesOf(new BigInt64Array([-5n, 6n])));
    expect(f.readRaw('i32')).toEqual(bytesOf(new Int32Array([-(2 ** 31), 2 ** 31 - 1, 42])));
    expect(f.readRaw('i16')).toEqual(bytesOf(new Int16Array([-32768, 32767])));
    expect(f.readRaw('i8')).toEqual(bytesOf(new Int8Array([-128, 127])));
    expect(f.readRaw('u8')).toEqual(new Uint8Array([0, 255]));
    expect(f.readRaw('bool')).toEqual(new Uint8Array([1, 0, 0, 1]));
    expect(f.readRaw('empty').byteLength).toBe(0);

    // Value-exact: these values are representable in every float dtype they were written as, except where noted.
    expect([...f.readFloat32('f32')]).toEqual([...new Float32Array(values)]);
    expect([...f.readFloat32('f64')]).toEqual([...new Float32Array([...values.slice(0, 11), 1 / 3])]);
    expect([...f.readFloat32('scalar')]).toEqual([Math.fround(Math.PI)]);
    const f16 = f.readFloat32('f16');
    expect([...f16.subarray(0, 9)]).toEqual(values.slice(0, 9)); // exact in f16
    expect(f16[9]).toBe(0.0010004043579101562); // 1e-3 rounded to f16
    expect(f16[10]).toBe(123.4375);
    const bf16 = f.readFloat32('bf16');
    expect([...bf16.subarray(0, 6)]).toEqual(values.slice(0, 6));
    expect(bf16[6]).toBe(65536); // 65504 rounds up in bf16 (8 mantissa bits)
    expect(bf16[10]).toBe(123.5);
    expect(f.readFloat32('f16.raw')[0]).toBe(1);
    expect(Number.isNaN(f.readFloat32('f16.raw')[1])).toBe(true);
    expect([...f.readFloat32('lazy')]).toEqual([9, 10]);
    expect([...f.readInt32('i64')]).toEqual([-1, 0, 2147483647, -2147483648]);
    expect([...f.readInt32('i64.from.i32')]).toEqual([-5, 6]);
    expect([...f.readInt32('i16')]).toEqual([-32768, 32767]);
    expect([...f.readInt32('i8')]).toEqual([-128, 127]);
    expect([...f.readInt32('u8')]).toEqual([0, 255]);
    expect([...f.readInt32('bool')]).toEqual([1, 0, 0, 1]);
    expect(f.readFloat32('empty').length).toBe(0);

    const info = f.info('bf16');
    expect(info.dtype).toBe('BF16');
    expect(info.shape).toEqual([2, 6]);
    expect(info.numel).toBe(12);
    expect(info.byteLength).toBe(24);
    const raw = fs.readFileSync(file).subarray(info.byteOffset, info.byteOffset + info.byteLength);
    expect(new Uint8Array(raw)).toEqual(f.readRaw('bf16'));
    f.close();
  });

  it('converts float tensors to a requested storage dtype on write (floatDtype)', () => {
    const dir = makeTmpDir('st-cast');
    const file = path.join(dir, 'cast.safetensors');
    writeSafetensors(
      file,
      [
        { name: 'w', dtype: 'F32', shape: [3], data: new Float32Array([1, 1 + 2 ** -8, -2.5]) },
        { name: 'ids', dtype: 'I32', shape: [1], data: new Int32Array([3]) },
      ],
      undefined,
      { floatDtype: 'BF16' },
    );
    const f = SafetensorsFile.open(file);
    expect(f.info('w').dtype).toBe('BF16');
    expect(f.readRaw('w')).toEqual(bytesOf(new Uint16Array([0x3f80, 0x3f80, 0xc020]))); // 1 + 2^-8 ties to even
    expect(f.info('ids').dtype).toBe('I32');
    f.close();
  });

  it('reads a large converted tensor in bounded chunks correctly (bf16, 3M elements)', () => {
    const dir = makeTmpDir('st-chunks');
    const file = path.join(dir, 'big.safetensors');
    const n = 3_000_001;
    const bits = new Uint16Array(n);
    for (let i = 0; i < n; i++) bits[i] = (i * 40503) & 0x7f7f;
    writeSafetensors(file, [{ name: 'big', dtype: 'BF16', shape: [n], data: bits }]);
    const f = SafetensorsFile.open(file);
    const out = f.readFloat32('big');
    const view = new Uint32Array(out.buffer);
    let bad = 0;
    for (let i = 0; i < n; i++) if (view[i] !== bits[i]! << 16) bad++;
    expect(bad).toBe(0);
    f.close();
  });
});
