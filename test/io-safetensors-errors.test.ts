import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FileFormatError } from '../src/io/file-format-error.js';
import { SafetensorsFile } from '../src/io/safetensors-reader.js';
import { writeSafetensors } from '../src/io/safetensors-writer.js';
import { makeTmpDir } from './helpers/tmpdir.js';

const dir = makeTmpDir('st-errors');
let counter = 0;

/** Writes a file from a header (object or raw text) and data bytes; the 8-byte length is that of the header. */
function craft(header: unknown, data: Uint8Array = new Uint8Array(0), opts: { rawHeader?: Uint8Array } = {}): string {
  const file = path.join(dir, `case-${++counter}.safetensors`);
  const h = opts.rawHeader ?? Buffer.from(typeof header === 'string' ? header : JSON.stringify(header), 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.byteLength));
  fs.writeFileSync(file, Buffer.concat([len, h, data]));
  return file;
}

/** Opens `file` expecting a one-line FileFormatError naming the file, the tensor (if given) and `pattern`. */
function expectOpenError(file: string, pattern: RegExp, tensor?: string): string {
  let caught: unknown;
  try {
    SafetensorsFile.open(file).close();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(FileFormatError);
  const msg = (caught as Error).message;
  expect(msg.startsWith(`${file}: `)).toBe(true);
  expect(msg).not.toMatch(/\n/);
  expect(msg).toMatch(pattern);
  if (tensor !== undefined) expect(msg).toContain(`tensor ${JSON.stringify(tensor)}`);
  return msg;
}

const f32x2 = (begin: number) => ({ dtype: 'F32', shape: [2], data_offsets: [begin, begin + 8] });

describe('safetensors reader rejects bad files with one line naming the file (and tensor)', () => {
  it('file shorter than 8 bytes', () => {
    const file = path.join(dir, 'short.safetensors');
    fs.writeFileSync(file, Buffer.from([1, 2, 3, 4, 5]));
    expectOpenError(file, /truncated: the file is 5 bytes, shorter than the 8-byte header length/);
    const empty = path.join(dir, 'empty.safetensors');
    fs.writeFileSync(empty, Buffer.alloc(0));
    expectOpenError(empty, /the file is 0 bytes/);
  });

  it('header length past the end of the file', () => {
    const file = path.join(dir, 'long-header.safetensors');
    const b = Buffer.alloc(20);
    b.writeBigUInt64LE(1000n);
    fs.writeFileSync(file, b);
    expectOpenError(file, /header length 1000 runs past the end of the file \(20 bytes/);
    const huge = path.join(dir, 'huge-header.safetensors');
    const h = Buffer.alloc(16);
    h.writeBigUInt64LE(2n ** 63n);
    fs.writeFileSync(huge, h);
    expectOpenError(huge, /header length 9223372036854775808 runs past the end/);
  });

  it('invalid JSON, invalid UTF-8, header not an object, leading whitespace', () => {
    expectOpenError(craft('{"a": {"dtype": '), /invalid JSON header: /);
    expectOpenError(craft('', undefined, { rawHeader: new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]) }), /not valid UTF-8/);
    expectOpenError(craft('[1, 2]  '), /header must be a JSON object of tensors, got an array/);
    expectOpenError(craft('"text"'), /header must be a JSON object of tensors, got string/);
    expectOpenError(craft(' {}'), /must start with "\{"/);
  });

  it('tensor entries missing dtype / shape / data_offsets, or not objects', () => {
    expectOpenError(craft({ w: { shape: [2], data_offsets: [0, 8] } }, new Uint8Array(8)), /missing "dtype"/, 'w');
    expectOpenError(craft({ w: { dtype: 'F32', data_offsets: [0, 8] } }, new Uint8Array(8)), /missing "shape"/, 'w');
    expectOpenError(craft({ w: { dtype: 'F32', shape: [2] } }, new Uint8Array(8)), /missing "data_offsets"/, 'w');
    expectOpenError(craft({ w: 5 }), /header entry must be an object/, 'w');
    expectOpenError(craft({ 'odd\nname': [] }), /header entry must be an object/, 'odd\nname');
  });

  it('unknown or unsupported dtype', () => {
    expectOpenError(craft({ w: { dtype: 'Q7', shape: [1], data_offsets: [0, 1] } }, new Uint8Array(1)), /unknown dtype "Q7" \(expected one of F64, F32, F16, BF16, F8_E4M3, I64, I32, I16, I8, U8, BOOL\)/, 'w');
    expectOpenError(craft({ w: { dtype: 'F8_E5M2', shape: [1], data_offsets: [0, 1] } }, new Uint8Array(1)), /dtype F8_E5M2 is not supported/, 'w');
    expectOpenError(craft({ w: { dtype: 7, shape: [1], data_offsets: [0, 1] } }, new Uint8Array(1)), /unknown dtype 7/, 'w');
  });

  it('bad shapes and offsets', () => {
    expectOpenError(craft({ w: { dtype: 'F32', shape: [2, -1], data_offsets: [0, 8] } }, new Uint8Array(8)), /shape \[2,-1\] must hold non-negative integers/, 'w');
    expectOpenError(craft({ w: { dtype: 'F32', shape: '2', data_offsets: [0, 8] } }, new Uint8Array(8)), /shape must be an array/, 'w');
    expectOpenError(craft({ w: { dtype: 'F32', shape: [2], data_offsets: [0] } }, new Uint8Array(8)), /data_offsets must be \[begin, end\]/, 'w');
    expectOpenError(craft({ w: { dtype: 'F32', shape: [2], data_offsets: [0, 8.5] } }, new Uint8Array(8)), /data_offsets must be \[begin, end\]/, 'w');
    expectOpenError(craft({ w: { dtype: 'F32', shape: [0], data_offsets: [8, 0] } }, new Uint8Array(8)), /data_offsets \[8, 0\] end before they begin/, 'w');
  });

  it('shape x dtype size differs from the byte range', () => {
    const msg = expectOpenError(
      craft({ w: { dtype: 'BF16', shape: [2, 3], data_offsets: [0, 10] } }, new Uint8Array(10)),
      /shape \[2, 3\] x BF16 \(2 bytes\) needs 12 bytes but data_offsets \[0, 10\] hold 10/,
      'w',
    );
    expect(msg).toContain('tensor "w"');
  });

  it('offsets out of range, and a truncated data section', () => {
    expectOpenError(craft({ a: f32x2(0), b: f32x2(8) }, new Uint8Array(12)), /data_offsets \[8, 16\] run past the end of the data section \(12 bytes\)/, 'b');
    // A valid file cut short: the last tensor is reported.
    const good = path.join(dir, 'good.safetensors');
    writeSafetensors(good, [
      { name: 'a', dtype: 'F32', shape: [4], data: new Float32Array(4) },
      { name: 'b', dtype: 'F32', shape: [4], data: new Float32Array(4) },
    ]);
    const bytes = fs.readFileSync(good);
    const cut = path.join(dir, 'cut.safetensors');
    fs.writeFileSync(cut, bytes.subarray(0, bytes.byteLength - 3));
    expectOpenError(cut, /run past the end of the data section \(29 bytes\): offsets out of range or file truncated/, 'b');
  });

  it('overlapping ranges, holes and trailing bytes (the data must be covered exactly)', () => {
    expectOpenError(craft({ a: f32x2(0), b: f32x2(4) }, new Uint8Array(12)), /data_offsets \[4, 12\] overlap tensor "a" at \[0, 8\]/, 'b');
    expectOpenError(craft({ a: f32x2(0), b: f32x2(0) }, new Uint8Array(8)), /overlap tensor "a"/);
    expectOpenError(craft({ a: f32x2(0), b: f32x2(12) }, new Uint8Array(20)), /leave bytes \[8, 12\) of the data section covered by no tensor/, 'b');
    expectOpenError(craft({ a: f32x2(4) }, new Uint8Array(12)), /leave bytes \[0, 4\)/, 'a');
    expectOpenError(craft({ a: f32x2(0) }, new Uint8Array(11)), /the tensors cover 8 bytes but the data section holds 11: 3 trailing bytes/);
    expectOpenError(craft({}, new Uint8Array(1)), /cover 0 bytes but the data section holds 1/);
  });

  it('__metadata__ must map strings to strings', () => {
    expectOpenError(craft({ __metadata__: { format: 1 } }), /__metadata__ value for "format" must be a string, got number 1/);
    expectOpenError(craft({ __metadata__: ['x'] }), /__metadata__ must be an object/);
  });

  it('a missing file, a directory', () => {
    expectOpenError(path.join(dir, 'nope.safetensors'), /file not found/);
    expectOpenError(makeTmpDir('st-errors-dir'), /not a regular file/);
  });

  it('accepts the edge cases the format allows: empty header, zero-size and scalar tensors, out-of-order entries', () => {
    const ok1 = craft('{}      ');
    expect(SafetensorsFile.open(ok1).names()).toEqual([]);
    const ok2 = craft({ z: { dtype: 'F32', shape: [0, 5], data_offsets: [4, 4] }, s: { dtype: 'F32', shape: [], data_offsets: [0, 4] } }, new Uint8Array(new Float32Array([2.5]).buffer));
    const f = SafetensorsFile.open(ok2);
    expect(f.names()).toEqual(['s', 'z']); // data order, not header order
    expect([...f.readFloat32('s')]).toEqual([2.5]);
    expect(f.info('z').numel).toBe(0);
    f.close();
  });
});

describe('safetensors reader: per-tensor errors name the file and tensor', () => {
  const file = path.join(dir, 'reads.safetensors');
  writeSafetensors(file, [
    { name: 'big', dtype: 'I64', shape: [3], data: new BigInt64Array([1n, 2n ** 31n, 3n]) },
    { name: 'w', dtype: 'F16', shape: [4], data: new Float32Array(4) },
  ]);

  it('an I64 value outside int32, a float read of ints, an int read of floats, a wrong output size, an unknown name', () => {
    const f = SafetensorsFile.open(file);
    expect(() => f.readInt32('big')).toThrow(`${file}: tensor "big": I64 value 2147483648 at element 1 does not fit in int32`);
    expect(() => f.readFloat32('big')).toThrow(`${file}: tensor "big": is I64, not a float dtype`);
    expect(() => f.readInt32('w')).toThrow(`${file}: tensor "w": is F16, not an integer dtype`);
    expect(() => f.readFloat32Into('w', new Float32Array(3))).toThrow(`${file}: tensor "w": output has 3 elements but the tensor has 4 (shape [4])`);
    expect(() => f.info('missing')).toThrow(`${file}: tensor "missing": no such tensor (the file holds 2)`);
    f.close();
    expect(() => f.readRaw('w')).toThrow(`${file}: tensor "w": read after close()`);
  });
});
