/**
 * Issue 18, item 2: `train --data ids.jsonl` on a model directory without tokenizer.json. Before the
 * change it failed with "tokenizer.json: not found" although token ids need no tokenizer; now EOS
 * (between packed documents) comes from config.json, the run trains, and a text line is one clear
 * error naming the file and line.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { SafetensorsFile } from '../src/io/safetensors-reader.js';
import { expectOneErrorLine, runCli } from './helpers/cli.js';
import { FIXTURES } from './helpers/fixtures.js';
import { makeTmpDir } from './helpers/tmpdir.js';

const MODEL = path.join(FIXTURES, 'tiny-mixtral'); // vocab 320, eos_token_id 2, no tokenizer.json

function idsFile(dir: string, lines: number, len: number): string {
  const f = path.join(dir, 'ids.jsonl');
  let x = 7;
  const rows: string[] = [];
  for (let i = 0; i < lines; i++) {
    const ids: number[] = [];
    for (let t = 0; t < len; t++) { x = (x * 1103515245 + 12345) % 2147483648; ids.push(3 + (x % 300)); }
    rows.push(JSON.stringify({ input_ids: ids }));
  }
  fs.writeFileSync(f, `${rows.join('\n')}\n`);
  return f;
}

describe('training on token ids needs no tokenizer', () => {
  it('trains with EOS from config.json and packs documents with it', () => {
    expect(fs.existsSync(path.join(MODEL, 'tokenizer.json'))).toBe(false);
    const dir = makeTmpDir('ids-train');
    const data = idsFile(dir, 40, 13);
    const out = path.join(dir, 'run');
    const r = runCli(['train', '--recipe', 'adamoe-mixtral-qlora', '--model', MODEL, '--data', data, '--out', out, '--steps', '3',
      '--set', 'train.seq_len=16', '--set', 'train.batch_size=2', '--set', 'train.grad_accum=1', '--set', 'eval.max_batches=1', '--set', 'eval.every=0', '--set', 'seeds=[0]'], { timeoutMs: 300_000 });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`no tokenizer.json in ${MODEL}: reading token ids, EOS 2 from config.json`);
    // 40 documents of 13 ids + EOS, every 10th held out: 36 * 14 = 504 tokens -> 31 sequences of 16; 4 * 14 = 56 -> 3
    expect(r.stdout).toMatch(/data: 31 training sequences of 16 tokens, 3 held out/);
    const metrics = fs.readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n');
    expect(metrics).toHaveLength(3);
    expect(fs.existsSync(path.join(out, 'final', 'model', 'tokenizer.json'))).toBe(false);
    const f = SafetensorsFile.open(path.join(out, 'final', 'model', fs.readdirSync(path.join(out, 'final', 'model')).find((n) => n.endsWith('.safetensors'))!));
    expect(f.names().length).toBeGreaterThan(0);
    f.close();
  });

  it('a text line is one error naming the file, the line and the missing tokenizer', () => {
    const dir = makeTmpDir('ids-text');
    const data = path.join(dir, 'mixed.jsonl');
    fs.writeFileSync(data, '{"input_ids": [5, 6, 7]}\n{"text": "hello"}\n');
    const line = expectOneErrorLine(runCli(['train', '--recipe', 'adamoe-mixtral-qlora', '--model', MODEL, '--data', data, '--out', path.join(dir, 'run'), '--steps', '1']));
    expect(line).toBe(`moe-tune: ${data}:2: this line needs a tokenizer to turn text into ids, and ${MODEL} has no tokenizer.json (use "input_ids" lines, or set tokenizer.dir)`);
  });
});
