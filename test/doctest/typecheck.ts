// Type-checks the README examples as written (JavaScript, checkJs) against the types of the installed tarballs,
// as an editor or `tsc --checkJs` would in the user's project. Errors point at README lines.
import { join } from 'node:path';
import ts from 'typescript';
import type { Example } from './markdown.js';
import { ROOT } from './scratch.js';

export interface Placed {
  example: Example;
  /** Absolute path of the file it was written to. */
  path: string;
}

/** Diagnostics per README, as `README.md:line:col TScode message`. */
export function typecheckExamples(placed: Placed[]): Map<string, string[]> {
  const options: ts.CompilerOptions = {
    allowJs: true,
    checkJs: true,
    noEmit: true,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    moduleDetection: ts.ModuleDetectionKind.Force,
    target: ts.ScriptTarget.ES2022,
    lib: ['lib.es2023.d.ts'],
    // What an editor checks in plain JavaScript: wrong names, arities and types, not the missing annotations
    // and null checks (`child.pid`) that only a TypeScript file could express.
    strict: true,
    noImplicitAny: false,
    strictNullChecks: false,
    useUnknownInCatchVariables: false,
    skipLibCheck: true,
    types: ['node'],
    typeRoots: [join(ROOT, 'node_modules', '@types')],
  };
  const program = ts.createProgram(
    placed.map((p) => p.path),
    options,
  );
  const byPath = new Map(placed.map((p) => [p.path, p.example]));
  const out = new Map<string, string[]>();
  for (const d of ts.getPreEmitDiagnostics(program)) {
    const example = d.file ? byPath.get(d.file.fileName) : undefined;
    const text = ts.flattenDiagnosticMessageText(d.messageText, '\n');
    if (!d.file || !example) {
      const key = placed[0]?.example.readme ?? 'README.md';
      out.set(key, [...(out.get(key) ?? []), `TS${d.code}: ${text}${d.file ? ` (${d.file.fileName})` : ''}`]);
      continue;
    }
    const { line, character } = d.file.getLineAndCharacterOfPosition(d.start ?? 0);
    const msg = `${example.readme}:${example.line + line}:${character + 1} TS${d.code}: ${text}`;
    out.set(example.readme, [...(out.get(example.readme) ?? []), msg]);
  }
  return out;
}
