// Which sanitizer reports are libipc's to fix: shared by .ci/sanitize and the tests that read a child's reports.
// A report file holds one process's reports, one block (a leak or an error, with its stack) per blank-line-separated
// paragraph. An error is ours when any frame names our addons or namespace. A leak is ours when, walking up from
// the allocator, our code comes before V8's (N-API entry points in between count as ours). Leaks allocated by V8
// (class templates made in napi_define_class, remembered sets of objects our addon set up at load) are what the
// isolate keeps until exit, which V8 does not free when a process exits; they are not ours, even when our Init is
// further down their stack.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const OURS = /shm_native|channel_native|libipc::/;

/** @param {string} block */
export function isOurs(block) {
  if (!/leak of/.test(block)) return OURS.test(block);
  const frames = block.split('\n').filter((l) => /^\s*#\d+ /.test(l));
  const allocator = /libsanitizer|asan_|lsan_|\b(operator new|malloc|calloc|realloc|posix_memalign|aligned_alloc|strdup)\b/;
  // From the allocator up: our frame first (maybe through N-API's entry points) = ours; V8's own code first = V8's.
  for (const f of frames) {
    if (allocator.test(f)) continue;
    if (OURS.test(f)) return true;
    if (/\bv8::/.test(f)) return false;
  }
  return false;
}

/** The blocks of every report file in `dir` that are ours. @param {string} dir @returns {string[]} */
export function ourReports(dir) {
  return readdirSync(dir).flatMap((f) =>
    readFileSync(join(dir, f), 'utf8')
      .split(/\n\s*\n/)
      .filter(isOurs),
  );
}

// As a command: node test/sanitizer-reports.mjs <dir> prints our blocks (each under a header) and exits 1 when any.
if (import.meta.url === `file://${process.argv[1]}`) {
  const dir = process.argv[2];
  const ours = ourReports(dir);
  for (const b of ours) console.log(`== sanitizer report in libipc code ==\n${b.split('\n').slice(0, 60).join('\n')}\n`);
  const files = readdirSync(dir).length;
  console.log(`sanitizer reports: ${ours.length} block(s) in libipc code (${files} report file(s) in all)`);
  process.exit(ours.length > 0 ? 1 : 0);
}
