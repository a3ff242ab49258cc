import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { formatNumber, renderLoadTable, renderModelCard } from '../src/hub/model-card.js';

function frontMatter(card: string): Record<string, unknown> {
  const m = /^---\n([\s\S]*?)\n---\n/.exec(card);
  expect(m).not.toBeNull();
  return parseYaml(m![1]!) as Record<string, unknown>;
}

describe('renderModelCard', () => {
  it('writes Hub front matter and markdown tables for metrics, load and the recipe', () => {
    const recipe = { name: 'adamoe-mixtral', router: { kind: 'topk', k: 3, null_experts: 8 }, lr: 0.0002, note: 'has ``` backticks' };
    const card = renderModelCard({
      repo: 'org/mixtral-adamoe',
      baseModel: 'mistralai/Mixtral-8x7B-v0.1',
      tags: ['adamoe', 'moe-tune', 'qlora'],
      libraryName: 'peft',
      license: 'apache-2.0',
      datasets: ['allenai/ai2_arc'],
      metrics: { 'arc_challenge/acc': 0.61234567, 'wikitext/ppl': 5.5, 'tokens': 1200000, 'note': 'a|b' },
      loadTable: [
        [0.25, 0.25, 0.25, 0.25],
        [0.7, 0.1, 0.1, 0.1],
      ],
      recipe,
    });
    expect(frontMatter(card)).toEqual({
      library_name: 'peft',
      license: 'apache-2.0',
      base_model: 'mistralai/Mixtral-8x7B-v0.1',
      datasets: ['allenai/ai2_arc'],
      pipeline_tag: 'text-generation',
      tags: ['moe-tune', 'adamoe', 'qlora'],
    });
    expect(card).toContain('# mixtral-adamoe\n');
    expect(card).toContain('from [mistralai/Mixtral-8x7B-v0.1](https://huggingface.co/mistralai/Mixtral-8x7B-v0.1)');
    expect(card).toContain(
      ['| metric | value |', '| --- | --- |', '| arc_challenge/acc | 0.61235 |', '| wikitext/ppl | 5.5 |', '| tokens | 1200000 |', '| note | a\\|b |'].join('\n'),
    );
    expect(card).toContain(
      ['| layer | E0 | E1 | E2 | E3 | max / mean |', '| --- | --- | --- | --- | --- | --- |', '| 0 | 25.0% | 25.0% | 25.0% | 25.0% | 1.00 |', '| 1 | 70.0% | 10.0% | 10.0% | 10.0% | 2.80 |'].join('\n'),
    );
    // the recipe block round-trips through YAML despite the backticks inside
    const block = /## Recipe[\s\S]*?\n(`{3,})yaml\n([\s\S]*?)\n\1\n/.exec(card);
    expect(block).not.toBeNull();
    expect(block![1]!.length).toBeGreaterThan(3);
    expect(parseYaml(block![2]!)).toEqual(recipe);
    expect(card).toContain('moe-tune hub pull org/mixtral-adamoe');
    expect(card.endsWith('\n')).toBe(true);
  });

  it('defaults: transformers, moe-tune tag, no optional sections', () => {
    const card = renderModelCard({});
    expect(frontMatter(card)).toEqual({ library_name: 'transformers', pipeline_tag: 'text-generation', tags: ['moe-tune'] });
    expect(card).not.toContain('## ');
    expect(card).toContain('# moe-tune model');
  });

  it('labelled load tables and number formatting', () => {
    const t = renderLoadTable({ rows: [{ label: 'layers.3', values: [0.5, 0.5] }], columns: ['null', 'E1'], caption: 'Load.' });
    expect(t).toBe('Load.\n\n| layer | null | E1 | max / mean |\n| --- | --- | --- | --- |\n| layers.3 | 50.0% | 50.0% | 1.00 |');
    expect([3, 0.1 + 0.2, 1e-7, NaN, Infinity, 123456.789].map(formatNumber)).toEqual(['3', '0.3', '1.000e-7', 'n/a', 'inf', '123456.79']);
  });
});
