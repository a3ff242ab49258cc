/** `moe-tune report RUN_DIR [--out FILE.html]`: a self-contained HTML page of a training run. */
import type { Command } from 'commander';
import * as path from 'node:path';
import { writeFileAtomic } from '../../io/index.js';
import { buildRunReport } from '../../report/run-report.js';
import { examples, type CliCommand } from '../command.js';
import { intArg } from '../options.js';
import { note, printJson } from '../output.js';

interface ReportCliOptions {
  out?: string;
  last: number;
  topK?: number;
  json?: boolean;
}

export const reportCommand: CliCommand = {
  name: 'report',
  register(program: Command) {
    program.command('report')
      .description('write a self-contained HTML report (inline SVG, no network) of a run: losses, aux losses, load per layer, activated experts per token, expert-load heatmap, FLOPs ratio')
      .argument('<run_dir>', 'run directory holding metrics.jsonl')
      .option('--out <file>', 'HTML file to write (default RUN_DIR/report.html)')
      .option('--last <n>', 'logged steps the expert-load heatmap sums over', intArg(1), 20)
      .option('--top-k <k>', 'nominal top-k for the FLOPs ratio (default: from the run\'s config.json)', intArg(1))
      .option('--json', 'print {out, sections, notes} as JSON')
      .addHelpText('after', examples([
        ['moe-tune report runs/tiny-adamoe', 'writes runs/tiny-adamoe/report.html'],
        ['moe-tune report runs/tc-moe --out tc-moe.html --last 50', 'heatmap over the last 50 logged steps'],
      ]))
      .action((runDir: string, opts: ReportCliOptions) => {
        const report = buildRunReport(runDir, { lastN: opts.last, topK: opts.topK });
        const out = opts.out ?? path.join(runDir, 'report.html');
        writeFileAtomic(out, report.html);
        if (opts.json) printJson({ out, sections: report.sections, notes: report.notes, rows: report.rows });
        else {
          for (const n of report.notes) note(`note: ${n}`);
          process.stdout.write(`wrote ${out} (${report.sections.length} sections from ${report.rows} logged steps)\n`);
        }
      });
  },
};
