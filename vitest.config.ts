import { defineConfig } from 'vitest/config';
import { fileURLToPath } from 'node:url';


export default defineConfig({
  resolve: {
    // the examples import the package by name, as users do
    alias: { 'moe-tune': fileURLToPath(new URL('./src/index.ts', import.meta.url)) },
  },
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    fileParallelism: true,
    maxWorkers: 2,
    // the memory test collects garbage before it reads RSS
    execArgv: ['--expose-gc'],
  },
});
