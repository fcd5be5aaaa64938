// A config that cannot run is refused before anything starts: one line naming the file, the line and the field.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, tempDir } from './support.js';

const dir = tempDir();
const env = { LIBIPC_RUNTIME_DIR: join(dir, 'rt') };

async function refused(name: string, text: string): Promise<string> {
  writeFileSync(join(dir, name), text);
  const r = await cli(['run', name], env, dir);
  expect(r.code, r.stderr).toBe(1);
  const lines = r.stderr.trim().split('\n');
  expect(lines, r.stderr).toHaveLength(1);
  expect(r.stdout).toBe('');
  return lines[0]!;
}

describe('libipc run: config errors', () => {
  it('an unknown field names the file, line and field', async () => {
    const line = await refused('unknown.yaml', 'services:\n  api:\n    command: node\n    argz: [x.js]\n');
    expect(line).toMatch(/unknown\.yaml:4: services\.api\.argz: unknown field 'argz'/);
  });

  it('a wrong type names the file, line and field', async () => {
    const line = await refused('type.yaml', 'services:\n  api:\n    command: node\n  worker:\n    command: node\n    instances: two\n');
    expect(line).toMatch(/type\.yaml:6: services\.worker\.instances: expected number/);
  });

  it('a dependency cycle is named', async () => {
    const line = await refused(
      'cycle.yaml',
      'services:\n  a:\n    command: node\n    dependsOn: [b]\n  b:\n    command: node\n    dependsOn: [c]\n  c:\n    command: node\n    dependsOn: [a]\n',
    );
    expect(line).toMatch(/cycle\.yaml:4: services\.a\.dependsOn: dependency cycle a → b → c → a/);
  });

  it('JSON configs, lists of services, unknown dependencies, syntax errors and missing files', async () => {
    expect(await refused('list.json', '{\n  "services": [\n    { "name": "a", "command": "node", "dependsOn": ["nope"] }\n  ]\n}\n')).toMatch(
      /list\.json:3: services\.a\.dependsOn: unknown service 'nope'/,
    );
    expect(await refused('bad.json', '{\n  "services": {\n    "a": { "command": "node", }\n')).toMatch(/bad\.json:\d+: JSON syntax/);
    expect(await refused('restart.yaml', 'services:\n  a:\n    command: node\n    restart:\n      policy: sometimes\n')).toMatch(
      /restart\.yaml:5: services\.a\.restart\.policy: must be 'always', 'on-failure' or 'never'/,
    );
    expect(await refused('top.yaml', 'servces:\n  a:\n    command: node\n')).toMatch(/top\.yaml:1: servces: unknown field 'servces'/);
    expect(await refused('empty.yaml', '')).toMatch(/empty\.yaml:1: the file is empty/);
    const missing = await cli(['run', 'missing.yaml'], env, dir);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/missing\.yaml: cannot read the config file \(no such file\)/);
    const huge = join(dir, 'huge.yaml');
    writeFileSync(huge, `services:\n${'  # padding\n'.repeat(500_000)}`);
    expect((await cli(['run', huge], env, dir)).stderr).toMatch(/more than a config may be/);
  });

  it('every problem of a config is reported, not only the first', async () => {
    const line = await refused('many.yaml', 'services:\n  api:\n    command: node\n    argz: [x.js]\n  worker:\n    command: node\n    instances: two\n');
    expect(line).toMatch(/many\.yaml:4: services\.api\.argz: unknown field 'argz'.*; and 1 more problem\(s\): many\.yaml:7: services\.worker\.instances: expected number/);
  });

  it('a PM2 ecosystem file that cannot be mapped names the app and field; one that throws says so', async () => {
    expect(await refused('ecosystem.config.js', "module.exports = { apps: [{ name: 'api', args: '--port 80' }] };\n")).toBe(
      'libipc run: ecosystem.config.js: apps[0] (api).script: is required: the file or command the app runs (ERR_LIBIPC_INVALID_ARGUMENT)',
    );
    expect(await refused('throws.config.js', "throw new Error('boom');\n")).toBe('libipc run: throws.config.js: the ecosystem file failed when run: boom (ERR_LIBIPC_INVALID_ARGUMENT)');
    expect(await refused('ecosystem.json', '{ "deploy": {} }\n')).toMatch(/ecosystem\.json: apps: a PM2 ecosystem file needs apps:/);
    writeFileSync(join(dir, 'app.js'), '');
    expect(await refused('ecosystem.yaml', 'apps:\n  - script: app.js\n    kill_timeout: -5\n')).toMatch(
      /ecosystem\.yaml: apps\[0\]\.kill_timeout: must be milliseconds .* got -5 \(ERR_LIBIPC_INVALID_ARGUMENT\)$/,
    );
    expect(await refused('ecosystem.json', '{ "apps": [{ "name": "app", "script": "app.js", "max_restarts": "ten" }] }\n')).toMatch(
      /ecosystem\.json: services\.app\.restartLimit: expected number.*\(in the libipc form of the PM2 apps, which 'libipc convert ecosystem\.json' prints\)/,
    );
    expect(await refused('ecosystem.config.ts', 'export default { apps: [] };\n')).toMatch(/ecosystem\.config\.ts: is a TypeScript file: give a YAML or JSON config, or a JavaScript PM2 ecosystem file/);
  });
});
