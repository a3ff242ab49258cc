/**
 * The README's library example (examples/load-surgery-train-save.ts, shown verbatim in the README)
 * runs: load -> null-expert surgery + LoRA -> train -> save, and the saved model reloads exactly.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { main } from '../examples/load-surgery-train-save.js';
import { loadModel } from '../src/models/load.js';
import { noGrad, Tensor, withScope } from '../src/tensor/index.js';
import { runCli } from './helpers/cli.js';
import { makeTmpDir } from './helpers/tmpdir.js';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');

describe('README library example', () => {
  it('is shown verbatim in the README', () => {
    const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
    const example = fs.readFileSync(path.join(root, 'examples/load-surgery-train-save.ts'), 'utf8');
    expect(readme).toContain(example.trim());
  });

  it('trains (fewer experts per token at no worse NLL) and saves a model that reloads', async () => {
    const out = makeTmpDir('example');
    const r = await main(out);
    // null experts at step 0 reproduce top-2 (load 2); training moves tokens to the nulls
    expect(r.loadBefore).toBe(2);
    expect(r.load).toBeGreaterThan(1);
    expect(r.load).toBeLessThan(1.75);
    expect(r.after).toBeLessThan(r.before + 0.02);
    const a = r.model;
    const b = loadModel(path.join(out, 'adamoe')).model;
    const ids = new Tensor(Int32Array.from([1, 5, 9, 33, 70, 2]), [1, 6]);
    const la = withScope(() => noGrad(() => a.forward(ids).toArray()));
    const lb = withScope(() => noGrad(() => b.forward(ids).toArray()));
    expect(la).toEqual(lb);
    expect(b.config.extensions.null_experts).toEqual({ m: 4, top_k: 3, mapping: 'zero' });

    // issue 18 item 1: the round trip keeps the tokenizer, so generate runs on the saved directory
    const saved = path.join(out, 'adamoe');
    for (const f of ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json']) expect(fs.existsSync(path.join(saved, f))).toBe(true);
    const tb = loadModel(saved).tokenizer!;
    const ta = loadModel(path.join(out, 'base', 'model')).tokenizer!;
    expect(tb.encode('The jury said')).toEqual(ta.encode('The jury said'));
    expect(tb.eosId).toBe(ta.eosId);
    const g = runCli(['generate', '--model', saved, '--prompt', 'The jury', '--max-new-tokens', '5', '--json']);
    expect(g.stderr).toBe('');
    expect(g.code).toBe(0);
    const gen = JSON.parse(g.stdout) as { new_tokens: number; ids: number[]; text: string; prompt_ids: number[] };
    expect(gen.prompt_ids).toEqual(ta.encode('The jury', { addEos: false }));
    expect(gen.new_tokens).toBeGreaterThan(0);
    expect(gen.text).toBe(tb.decode(gen.ids));
  });
});
