// Prints "N passed, N failed" (and skipped, when any) from vitest's JSON result; exit 1 when the
// file is missing, unreadable or reports failures. A test file that failed to load (no test ran)
// counts as one failure.
import * as fs from 'node:fs';

const file = process.argv[2];
let r;
try {
  r = JSON.parse(fs.readFileSync(file, 'utf8'));
} catch (err) {
  console.log(`could not read the vitest result ${file}: ${err.message}`);
  console.log('0 passed, 1 failed');
  process.exit(1);
}
const files = r.testResults ?? [];
const brokenFiles = files.filter((f) => f.status === 'failed' && !(f.assertionResults ?? []).some((a) => a.status === 'failed')).length;
const passed = r.numPassedTests ?? 0;
const failed = (r.numFailedTests ?? 0) + brokenFiles;
const skipped = (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed > 0 || r.success === false ? 1 : 0);
