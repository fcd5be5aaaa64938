// Types match run time for every exported API: each entry point of each published package exports at run time
// (ESM import and CJS require) exactly the values its declarations (.d.ts / .d.cts) declare, no more, no less.
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import ts from 'typescript';
import { describe, expect, test } from 'vitest';
import { publishedPackages } from './scratch.js';

interface Entry {
  subpath: string;
  condition: 'import' | 'require';
  types: string;
  code: string;
}

/** The entry points of an `exports` map: one per subpath and condition (import/require), with its types. */
function entries(exportsMap: Record<string, any>): Entry[] {
  const out: Entry[] = [];
  for (const [subpath, target] of Object.entries(exportsMap)) {
    if (subpath === './package.json' || typeof target !== 'object') continue;
    if (target.import || target.require) {
      for (const condition of ['import', 'require'] as const) {
        const t = target[condition];
        if (t) out.push({ subpath, condition, types: t.types, code: t.default });
      }
    } else if (target.default) {
      out.push({ subpath, condition: target.default.endsWith('.cjs') ? 'require' : 'import', types: target.types, code: target.default });
    }
  }
  return out;
}

const pkgs = publishedPackages();
const all = pkgs.flatMap((pkg) => entries(pkg.json.exports ?? {}).map((e) => ({ pkg, e, dts: join(pkg.dir, e.types) })));
let program: ts.Program | undefined;

/** Names of the values (not types) a declaration file exports (one program for every entry point). */
function declaredValues(dts: string): string[] {
  program ??= ts.createProgram(
    all.map((x) => x.dts),
    {
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      target: ts.ScriptTarget.ES2022,
      skipLibCheck: true,
      noEmit: true,
      types: ['node'],
    },
  );
  const checker = program.getTypeChecker();
  const file = program.getSourceFile(dts);
  const moduleSymbol = file && checker.getSymbolAtLocation(file);
  if (!moduleSymbol) throw new Error(`${dts} is not a module`);
  return checker
    .getExportsOfModule(moduleSymbol)
    .filter((s) => {
      const target = s.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(s) : s;
      return (target.flags & ts.SymbolFlags.Value) !== 0;
    })
    .map((s) => s.getName())
    .filter((n) => n !== 'default')
    .sort();
}

for (const pkg of pkgs) {
  describe(pkg.name, () => {
    for (const { e } of all.filter((x) => x.pkg === pkg)) {
      test(`${e.subpath} (${e.condition}): run-time exports = declared values`, async () => {
        const code = join(pkg.dir, e.code);
        const mod =
          e.condition === 'import' ? await import(pathToFileURL(code).href) : createRequire(join(pkg.dir, 'package.json'))(code);
        const runtime = Object.keys(mod)
          .filter((k) => k !== 'default' && k !== '__esModule' && k !== 'module.exports')
          .sort();
        const declared = declaredValues(join(pkg.dir, e.types));
        expect(
          { missingAtRunTime: declared.filter((n) => !runtime.includes(n)), undeclared: runtime.filter((n) => !declared.includes(n)) },
          `${pkg.name}${e.subpath.slice(1)} via ${e.condition}: ${e.code} against ${e.types}`,
        ).toEqual({ missingAtRunTime: [], undeclared: [] });
      });
    }
  });
}
