import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { bf16ToFloat32, float32ToBf16 } from '../src/io/dtype.js';
import { SafetensorsFile } from '../src/io/safetensors-reader.js';
import { writeSafetensors } from '../src/io/safetensors-writer.js';
import { makeTmpDir } from './helpers/tmpdir.js';

const MB = 1024 * 1024;

describe('memory of lazy reads', () => {
  it('readFloat32Into of a 64 MB f32 tensor reads into the output without a second copy; bf16 uses bounded scratch', () => {
    const dir = makeTmpDir('io-memory');
    const file = path.join(dir, 'big.safetensors');
    const n = 16 * MB; // 16M float32 = 64 MB
    {
      const data = new Float32Array(n);
      for (let i = 0; i < n; i += 4099) data[i] = i;
      writeSafetensors(file, [
        { name: 'big', dtype: 'F32', shape: [n], data },
        { name: 'half', dtype: 'BF16', shape: [n], data }, // converted on write in bounded chunks
      ]);
    }
    const f = SafetensorsFile.open(file);
    const out = new Float32Array(n);
    globalThis.gc?.();
    const before = process.memoryUsage().arrayBuffers;
    f.readFloat32Into('big', out);
    const afterF32 = process.memoryUsage().arrayBuffers;
    expect([out[0], out[1], out[4099], out[4099 * 4000], out[n - 1]]).toEqual([0, 0, 4099, 4099 * 4000, 0]);
    f.readFloat32Into('half', out);
    const afterBf16 = process.memoryUsage().arrayBuffers;
    expect([out[4099], out[4099 * 4000]]).toEqual([bf16ToFloat32(float32ToBf16(4099)), bf16ToFloat32(float32ToBf16(4099 * 4000))]);
    expect(out[4099]).toBe(4096); // 4099 has more than 8 significant bits
    // A second copy would add 64 MB; the f32 path adds nothing, the bf16 path one 4 MB scratch chunk.
    expect((afterF32 - before) / MB).toBeLessThan(8);
    expect((afterBf16 - before) / MB).toBeLessThan(16);
    f.close();
  });
});
