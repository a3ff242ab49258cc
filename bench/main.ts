/**
 * Benchmark entry point: `npm run bench -- --FLAG`. Each flag runs one benchmark and prints its
 * result (--engine also stores it in bench/results.json under "engine").
 */
import { runEngineBench } from './engine.js';
import { runMoeLayerBench } from './moe-layer.js';
import { mergeResult, RESULTS_PATH } from './results-file.js';

const args = process.argv.slice(2);
if (args.includes('--moe-layer')) console.log(JSON.stringify(runMoeLayerBench(), null, 2));
else if (args.includes('--engine')) {
  const result = await runEngineBench({ backends: ['native', 'js'] });
  mergeResult('engine', { date: new Date().toISOString(), ...result });
  console.log(`wrote ${RESULTS_PATH} (key "engine")`);
} else console.log('usage: npm run bench -- --moe-layer | --engine');
