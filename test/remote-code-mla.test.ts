/**
 * The remote code's multi-head latent attention (python/moe_tune_remote/mla_attention.py, for DeepSeek-V3 /
 * Kimi-K2 models moe-tune saves after surgery) against transformers' own DeepseekV3Attention on the same
 * weights and input, for every deepseek_v3 row of test/python/families.py (q LoRA + interleaved rope +
 * attention_bias; plain q_proj + yarn rope with mscale), on transformers 5.18 and 4.57.
 */
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { python4, python5, runPythonJson } from './helpers/python.js';

const TOOLS = [python5('remote-code MLA (transformers 5)'), python4('remote-code MLA (transformers 4)')];
for (const t of TOOLS) if (!t.available) console.log(t.skipLine);

describe.each(TOOLS.filter((t) => t.available).map((py) => ({ py, version: py.transformers })))('remote-code MLA vs transformers $version DeepseekV3Attention', ({ py }) => {
  it('gives the same output for every deepseek_v3 row', async () => {
    const diffs = await runPythonJson<Record<string, number>>(py, [path.join('test', 'python', 'check_mla_attention.py')], { timeoutMs: 240_000 });
    expect(Object.keys(diffs).sort()).toEqual(['deepseek-v3', 'kimi-k2']);
    for (const [row, d] of Object.entries(diffs)) expect(d, row).toBeLessThan(1e-6);
  }, 300_000);
});
