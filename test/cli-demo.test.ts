/**
 * `moe-tune demo --quick` runs the whole pipeline end to end (pretrain, null-expert surgery,
 * 4-bit fine-tune with LoRA, eval, router sweep, report) and writes a self-contained HTML report;
 * the numbers it reports hold together: the surgery preserves the step-0 loss, the AdaMoE
 * fine-tune lowers the load below the original top-2, and the sweep's load grows with k.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { nativeAvailable } from '../src/tensor/index.js';
import { checkPageInChromium, findChromium, overlappingBoxes } from './helpers/chromium.js';
import { expectOneErrorLine, runCli } from './helpers/cli.js';
import { makeTmpDir } from './helpers/tmpdir.js';

const BACKEND = nativeAvailable() ? 'native' : 'js';
const CHROMIUM = findChromium();
if (!CHROMIUM) console.warn('cli-demo: no chromium on PATH (.ci/run installs it); the report is not rendered');

interface DemoJson {
  report: string;
  seconds: number;
  stages: { name: string; seconds: number }[];
  surgery: { stepZeroLoadExpected: number; lossChange: number };
  finetune: { steps: number; loadBefore: number; loadAfter: number; loadTarget: number };
  pretrain: { steps: number; valPpl: number };
  eval: { pretrained: { ppl: number; load: number }; finetuned: { ppl: number; load: number } };
  sweep: { router: string; load: number; nll: number }[];
}

describe('moe-tune demo --quick', () => {
  it('runs every stage and writes the report', () => {
    const out = path.join(makeTmpDir('cli-demo'), 'demo');
    const r = runCli(['demo', '--quick', '--out', out], { env: { MOE_TUNE_BACKEND: BACKEND } });
    expect(r.code, r.stderr).toBe(0);
    for (let i = 1; i <= 6; i++) expect(r.stdout).toContain(`[${i}/6]`);
    expect(r.stdout).toContain(`report: ${path.join(out, 'report.html')}`);
    const html = fs.readFileSync(path.join(out, 'report.html'), 'utf8');
    expect(html).toMatch(/^<!DOCTYPE html>/i);
    expect((html.match(/<svg/g) ?? []).length).toBeGreaterThanOrEqual(5);
    for (const section of ['Auxiliary loss: adamoe-balance', 'Activated experts per token', 'Expert load per layer', 'Router sweep', 'Evaluation: eval-brown-validation.json', 'Recipe: recipe.yaml']) expect(html).toContain(section);
    expect(html).not.toMatch(/<script[^>]+src=|https?:\/\/(?!www\.w3\.org)/);

    const d = JSON.parse(fs.readFileSync(path.join(out, 'demo.json'), 'utf8')) as DemoJson;
    expect(d.stages.map((s) => s.name)).toEqual(['pretrain', 'surgery', 'finetune', 'eval', 'sweep', 'report']);
    expect(d.surgery.stepZeroLoadExpected).toBe(2);
    expect(Math.abs(d.surgery.lossChange)).toBeLessThan(1e-6);
    expect(d.finetune.loadBefore).toBeCloseTo(2, 6);
    expect(d.finetune.loadAfter).toBeLessThan(d.finetune.loadBefore);
    expect(d.eval.pretrained.load).toBeCloseTo(2, 6);
    expect(d.eval.finetuned.load).toBeLessThan(2);
    const ks = d.sweep.slice(1);
    expect(ks.map((p) => p.router)).toEqual([1, 2, 3, 4, 5, 6].map((k) => `null-experts:m=4,k=${k}`));
    for (let i = 1; i < ks.length; i++) expect(ks[i]!.load).toBeGreaterThanOrEqual(ks[i - 1]!.load);
    expect(d.sweep[0]!.load).toBeCloseTo(ks[2]!.load, 9); // the model's own router is k = 3
    // the recipes the demo ran are loadable recipes
    expect(fs.existsSync(path.join(out, 'recipes', 'demo-pretrain.yaml'))).toBe(true);
    expect(fs.existsSync(path.join(out, 'finetune', 'recipe.yaml'))).toBe(true);

    // issue 18 item 4: the report covers the pretraining run too, `report OUT` works on the demo
    // directory, and the page renders in Chromium with every plot drawn
    for (const section of ['pretrain: Loss', 'pretrain: Expert load per layer', 'finetune: Loss', 'finetune: Router sweep']) expect(html).toContain(section);
    expect((html.match(/Recipe: recipe\.(yaml|json)/g) ?? []).length).toBe(2); // one per run
    const again = runCli(['report', out, '--out', path.join(out, 'report-again.html')]);
    expect(again.code, again.stderr).toBe(0);
    expect(fs.readFileSync(path.join(out, 'report-again.html'), 'utf8').replace(/generated [^<]*/, '')).toBe(html.replace(/generated [^<]*/, ''));
    if (CHROMIUM) {
      const check = checkPageInChromium(CHROMIUM, path.join(out, 'report.html'), path.dirname(out));
      expect(check.errors).toEqual([]);
      expect(check.plots).toHaveLength((html.match(/<svg[^>]* class="plot /g) ?? []).length);
      for (const p of check.plots) expect(p.drawnMarks, `${p.title} draws nothing`).toBeGreaterThan(0);
      for (const p of check.plots) expect(overlappingBoxes(p.labels), p.title).toEqual([]);
    }

    // the output directory is never reused without --force
    expect(expectOneErrorLine(runCli(['demo', '--quick', '--out', out]))).toMatch(/demo: exists and is not empty \(pass --force to replace it\)$/);
  });
});
