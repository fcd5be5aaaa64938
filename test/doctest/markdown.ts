// Reads the README examples that are marked runnable, and the links of a README.
//
// A fenced block is an example when its info string says `runnable` after the language:
//
//   ```js runnable                    ESM, run as example-<line>.mjs (top-level await works)
//   ```js runnable cjs                CommonJS, run as example-<line>.cjs
//   ```js runnable file=host.mjs      run under that name (.mjs ESM, .cjs or .js CommonJS, as in `npm init -y`)
//   ```js runnable helper file=x.mjs  only written (the other half that a runnable block starts)
//   ```js runnable needs=etcd         the runner starts an etcd and sets ETCD_ENDPOINTS
//   ```js runnable timeout=60         seconds (default 30)
//   ```sh runnable                    shell lines run in the project that installed the tarballs
//   ```cpp runnable file=member.cc    C++17, compiled by the runner (g++ -std=c++17 -pthread, -I every installed
//                                     package's require('<pkg>/include').include_dir) into `member` next to it,
//                                     before the README's js blocks run; never run alone (a js block starts it)
//
// Renderers (npm, GitHub) use only the first word of the info string, so readers see plain `js`.
import { readFileSync } from 'node:fs';

export interface Example {
  /** README path relative to the repository root. */
  readme: string;
  /** 1-based line of the first line of code. */
  line: number;
  lang: 'js' | 'sh' | 'cpp';
  code: string;
  /** File name in the README's example folder (js and cpp). */
  file: string;
  module: 'esm' | 'cjs' | 'sh' | 'cpp';
  helper: boolean;
  needs: string[];
  timeoutMs: number;
}

export interface Fence {
  line: number;
  info: string;
  code: string;
}

const DEFAULT_TIMEOUT_S = 30;

/** Every fenced code block of a markdown text, with the line of its first code line. */
export function fences(text: string): Fence[] {
  const lines = text.split('\n');
  const out: Fence[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(`{3,}|~{3,})(.*)$/.exec(lines[i]!);
    if (!open) continue;
    const [, indent, marker, info] = open;
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length; j++) {
      const close = new RegExp(`^\\s*${marker![0] === '`' ? '`' : '~'}{${marker!.length},}\\s*$`).exec(lines[j]!);
      if (close) break;
      body.push(lines[j]!.startsWith(indent!) ? lines[j]!.slice(indent!.length) : lines[j]!);
    }
    out.push({ line: i + 2, info: info!.trim(), code: body.join('\n') + '\n' });
    i = j;
  }
  return out;
}

function moduleOf(file: string): 'esm' | 'cjs' {
  if (file.endsWith('.mjs')) return 'esm';
  if (file.endsWith('.cjs') || file.endsWith('.js')) return 'cjs'; // .js: a project made by `npm init -y` is CommonJS
  throw new Error(`file=${file}: an example file must end in .mjs, .cjs or .js`);
}

/** The runnable examples of one README (path relative to `root`). Throws on a malformed marker. */
export function examples(root: string, readme: string): Example[] {
  const text = readFileSync(`${root}/${readme}`, 'utf8');
  const out: Example[] = [];
  for (const f of fences(text)) {
    const [lang, ...words] = f.info.split(/\s+/);
    if (!words.includes('runnable')) continue;
    const where = `${readme}:${f.line - 1}`;
    if (lang !== 'js' && lang !== 'sh' && lang !== 'cpp') throw new Error(`${where}: runnable blocks are js, sh or cpp, not ${lang}`);
    if (lang === 'cpp') {
      out.push(cppExample(readme, f, words, where));
      continue;
    }
    let file: string | undefined;
    let cjs = false;
    let helper = false;
    const needs: string[] = [];
    let timeoutMs = DEFAULT_TIMEOUT_S * 1000;
    for (const w of words) {
      if (w === 'runnable') continue;
      else if (w === 'cjs') cjs = true;
      else if (w === 'helper') helper = true;
      else if (w.startsWith('file=')) file = w.slice(5);
      else if (w.startsWith('needs=')) needs.push(...w.slice(6).split(','));
      else if (/^timeout=\d+$/.test(w)) timeoutMs = Number(w.slice(8)) * 1000;
      else throw new Error(`${where}: unknown word '${w}' in \`${f.info}\` (runnable, cjs, helper, file=, needs=, timeout=)`);
    }
    if (lang === 'sh') {
      out.push({ readme, line: f.line, lang, code: f.code, file: `example-${f.line}.sh`, module: 'sh', helper: false, needs, timeoutMs });
      continue;
    }
    if (file !== undefined && (file.includes('/') || !/^[\w.-]+$/.test(file))) throw new Error(`${where}: file=${file} must be a plain file name`);
    file ??= `example-${f.line}.${cjs ? 'cjs' : 'mjs'}`;
    const module = moduleOf(file);
    if (cjs && module !== 'cjs') throw new Error(`${where}: 'cjs' with file=${file} (an ES module name)`);
    if (helper && !words.some((w) => w.startsWith('file='))) throw new Error(`${where}: a helper needs file=NAME so that the example can start it`);
    out.push({ readme, line: f.line, lang, code: f.code, file, module, helper, needs, timeoutMs });
  }
  const names = out.filter((e) => e.lang !== 'sh').map((e) => e.file);
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup) throw new Error(`${readme}: two runnable blocks are written to ${dup}`);
  return out;
}

/** A C++ block: `cpp runnable file=NAME.cc [timeout=S]` (the compile's timeout); the binary is NAME. */
function cppExample(readme: string, f: Fence, words: string[], where: string): Example {
  let file: string | undefined;
  let timeoutMs = 120_000;
  for (const w of words) {
    if (w === 'runnable') continue;
    else if (w.startsWith('file=')) file = w.slice(5);
    else if (/^timeout=\d+$/.test(w)) timeoutMs = Number(w.slice(8)) * 1000;
    else throw new Error(`${where}: unknown word '${w}' in \`${f.info}\` (a cpp block takes runnable, file=NAME.cc, timeout=)`);
  }
  if (file === undefined || !/^[\w-]+\.(cc|cpp)$/.test(file)) {
    throw new Error(`${where}: a cpp block needs file=NAME.cc (a plain name): the runner compiles it to NAME for a js block to start`);
  }
  return { readme, line: f.line, lang: 'cpp', code: f.code, file, module: 'cpp', helper: true, needs: [], timeoutMs };
}

/** The binary a cpp block compiles to: its file name without the extension. */
export function cppBinary(ex: Example): string {
  return ex.file.replace(/\.(cc|cpp)$/, '');
}

export interface Link {
  line: number;
  target: string;
}

/** Markdown links and images `[text](target)` outside code blocks and code spans. */
export function links(text: string): Link[] {
  const out: Link[] = [];
  const lines = text.split('\n');
  let fence: string | undefined;
  lines.forEach((raw, i) => {
    const f = /^\s*(`{3,}|~{3,})/.exec(raw);
    if (f) {
      if (fence === undefined) fence = f[1]![0]!;
      else if (f[1]![0] === fence) fence = undefined;
      return;
    }
    if (fence !== undefined) return;
    const line = raw.replace(/`[^`]*`/g, (s) => ' '.repeat(s.length));
    for (const m of line.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) out.push({ line: i + 1, target: m[1]! });
  });
  return out;
}
