// The doc-test runner itself: it reads the markers as documented, and it sees a failing example, a leftover in
// /dev/shm, a process left behind and a hang.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { compileCppBlocks, cppCompileArgs } from './compile-cpp.js';
import { type Example, cppBinary, examples, fences, links } from './markdown.js';
import { noCompiler } from '../cpp.js';
import { privateShm, runExample } from './run-example.js';

const dir = mkdtempSync(join(tmpdir(), 'libipc-doctest-runner-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function readme(text: string): Example[] {
  writeFileSync(join(dir, 'README.md'), text);
  return examples(dir, 'README.md');
}

describe('markers', () => {
  test('runnable blocks, their modules, files, helpers, needs and timeouts', () => {
    const list = readme(
      [
        '# x',
        '```js',
        'not run',
        '```',
        '```js runnable',
        'await 1;',
        '```',
        '```js runnable cjs',
        "require('x');",
        '```',
        '```js runnable file=host.mjs needs=etcd timeout=60',
        'host',
        '```',
        '```js runnable helper file=service.js',
        'service',
        '```',
        '```sh runnable',
        'node --version',
        '```',
      ].join('\n'),
    );
    expect(list.map((e) => [e.line, e.file, e.module, e.helper, e.needs, e.timeoutMs])).toEqual([
      [6, 'example-6.mjs', 'esm', false, [], 30_000],
      [9, 'example-9.cjs', 'cjs', false, [], 30_000],
      [12, 'host.mjs', 'esm', false, ['etcd'], 60_000],
      [15, 'service.js', 'cjs', true, [], 30_000],
      [18, 'example-18.sh', 'sh', false, [], 30_000],
    ]);
    expect(list[0]!.code).toBe('await 1;\n');
  });

  test('a malformed marker is an error that names the line', () => {
    expect(() => readme('```js runnable fast\nx\n```\n')).toThrow(/README.md:1: unknown word 'fast'/);
    expect(() => readme('```ts runnable\nx\n```\n')).toThrow(/runnable blocks are js, sh or cpp/);
    expect(() => readme('```cpp runnable\nx\n```\n')).toThrow(/a cpp block needs file=NAME.cc/);
    expect(() => readme('```cpp runnable file=a.mjs\nx\n```\n')).toThrow(/a cpp block needs file=NAME.cc/);
    expect(() => readme('```cpp runnable file=../a.cc\nx\n```\n')).toThrow(/a cpp block needs file=NAME.cc/);
    expect(() => readme('```cpp runnable cjs file=a.cc\nx\n```\n')).toThrow(/unknown word 'cjs'/);
    expect(() => readme('```cpp runnable file=a.cc\nx\n```\n```cpp runnable file=a.cc\ny\n```\n')).toThrow(/two runnable blocks/);
    expect(() => readme('```js runnable helper\nx\n```\n')).toThrow(/a helper needs file=NAME/);
    expect(() => readme('```js runnable cjs file=a.mjs\nx\n```\n')).toThrow(/'cjs' with file=a.mjs/);
    expect(() => readme('```js runnable file=a.mjs\nx\n```\n```js runnable file=a.mjs\ny\n```\n')).toThrow(/two runnable blocks/);
  });

  test('C++ blocks: compiled (never run alone) to the name without .cc, with -I for each include dir', () => {
    const list = readme(['```cpp runnable file=member.cc', 'int main() {}', '```', '```cpp runnable file=eng-2.cpp timeout=300', 'x', '```'].join('\n'));
    expect(list.map((e) => [e.line, e.lang, e.file, e.module, e.helper, e.timeoutMs, cppBinary(e)])).toEqual([
      [2, 'cpp', 'member.cc', 'cpp', true, 120_000, 'member'],
      [5, 'cpp', 'eng-2.cpp', 'cpp', true, 300_000, 'eng-2'],
    ]);
    expect(cppCompileArgs(list[0]!, ['/a/include', '/b/include'])).toEqual(['-std=c++17', '-pthread', '-I', '/a/include', '-I', '/b/include', 'member.cc', '-o', 'member']);
  });

  test('links outside code', () => {
    const text = 'See [a](examples/a.mjs) and [`b`](https://x.y/b#c).\n```md\n[no](link)\n```\n`[no](span)`';
    expect(links(text)).toEqual([
      { line: 1, target: 'examples/a.mjs' },
      { line: 1, target: 'https://x.y/b#c' },
    ]);
    expect(fences(text).map((f) => f.info)).toEqual(['md']);
  });
});

describe('runs', () => {
  const run = (code: string, timeoutMs = 10_000) => {
    const file = join(dir, `t-${Math.random().toString(16).slice(2)}.mjs`);
    writeFileSync(file, code);
    const ex: Example = { readme: 'README.md', line: 1, lang: 'js', code, file, module: 'esm', helper: false, needs: [], timeoutMs };
    return runExample(ex, { cwd: dir, file, env: { PATH: process.env.PATH } });
  };

  test('a clean example', async () => {
    const r = await run("console.log('hi');");
    expect(r).toMatchObject({ code: 0, timedOut: false, leftovers: [], strays: [] });
    expect(r.output).toBe('hi\n');
  });

  test('a failing example: its exit code and output', async () => {
    const r = await run("console.error('boom'); process.exit(3);");
    expect(r.code).toBe(3);
    expect(r.output).toContain('boom');
  });

  test('an object left in /dev/shm', async () => {
    const name = `libipc.doctest.leftover-${process.pid}`;
    const r = await run(`import { writeFileSync } from 'node:fs'; writeFileSync('/dev/shm/${name}', '');`);
    if (!privateShm) rmSync(`/dev/shm/${name}`, { force: true });
    expect(r.code).toBe(0);
    expect(r.leftovers).toEqual([name]);
  });

  test('a process left running is reported and ended', async () => {
    const r = await run("import { spawn } from 'node:child_process'; spawn('sleep', ['30'], { detached: true, stdio: 'ignore' }).unref();");
    expect(r.code).toBe(0);
    expect(r.strays).toHaveLength(1);
    expect(r.strays[0]).toContain('sleep 30');
  });

  test('a hang is ended at the timeout', async () => {
    const r = await run('setInterval(() => {}, 1000);', 1000);
    expect(r.timedOut).toBe(true);
  });
});

describe.skipIf(noCompiler !== undefined)('compiles C++ blocks', () => {
  test('against the include dirs given, next to the source; a block that does not compile names its line', async () => {
    const inc = join(dir, 'inc');
    mkdirSync(join(inc, 'libipc'), { recursive: true });
    writeFileSync(join(inc, 'libipc', 'answer.h'), 'inline int answer() { return 42; }\n');
    const [good] = readme('```cpp runnable file=good.cc\n#include <libipc/answer.h>\n#include <cstdio>\nint main() { std::printf("%d\\n", answer()); }\n```\n');
    writeFileSync(join(dir, good!.file), good!.code);
    await compileCppBlocks([good!], dir, [inc]);
    expect(execFileSync(join(dir, 'good'), { encoding: 'utf8' })).toBe('42\n');

    const [bad] = readme('# x\n\n```cpp runnable file=bad.cc\n#include <libipc/missing.h>\nint main() {}\n```\n');
    writeFileSync(join(dir, bad!.file), bad!.code);
    await expect(compileCppBlocks([bad!], dir, [inc])).rejects.toThrow(/README.md:3 \(bad.cc\) did not compile: .*missing.h/s);
  }, 120_000);
});
