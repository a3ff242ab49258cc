/**
 * OS errors name the path (issue 18, item 21): an error raised on a descriptor (write, fsync) carries no path in
 * Node ("ENOSPC: no space left on device, write"); every writer of ours names the file. /dev/full gives a real
 * ENOSPC on Linux.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { withPath } from '../src/io/os-error.js';
import { writeThroughTempFile } from '../src/io/atomic.js';
import { MetricsWriter } from '../src/train/metrics.js';
import { makeTmpDir } from './helpers/tmpdir.js';

const hasDevFull = process.platform === 'linux' && fs.existsSync('/dev/full');

function enospc(): Error {
  const fd = fs.openSync('/dev/full', 'w');
  try {
    fs.writeSync(fd, 'x');
  } catch (err) {
    return err as Error;
  } finally {
    fs.closeSync(fd);
  }
  throw new Error('/dev/full accepted a write');
}

describe.skipIf(!hasDevFull)('OS errors name the path', () => {
  it('a real ENOSPC from write(2) names no file; withPath makes it one line naming the file, keeping the code', () => {
    const raw = enospc();
    expect(raw.message).toBe('ENOSPC: no space left on device, write');
    const named = withPath(raw, '/runs/x/metrics.jsonl') as Error & { code?: string };
    expect(named.message).toBe('/runs/x/metrics.jsonl: writing failed: ENOSPC (no space left on device)');
    expect(named.code).toBe('ENOSPC');
    expect(withPath(new TypeError('not an OS error'), '/x')).toBeInstanceOf(TypeError);
  });

  it('writeThroughTempFile: a write that fails names the target and leaves no temp file', () => {
    const dir = makeTmpDir('os-error');
    const target = path.join(dir, 'model.safetensors');
    expect(() => writeThroughTempFile(target, () => { throw enospc(); })).toThrow(`${target}: writing failed: ENOSPC (no space left on device)`);
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('MetricsWriter: ENOSPC while appending a step names metrics.jsonl', () => {
    const runDir = makeTmpDir('os-error-metrics');
    fs.symlinkSync('/dev/full', path.join(runDir, 'metrics.jsonl')); // a full disk under metrics.jsonl
    const w = new MetricsWriter(runDir);
    expect(() => w.append({ step: 1, loss: 1 } as never)).toThrow(`${path.join(runDir, 'metrics.jsonl')}: writing failed: ENOSPC (no space left on device)`);
    w.close();
  });
});
