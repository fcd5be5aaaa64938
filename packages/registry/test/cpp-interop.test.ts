// Layout conformance, tested: a C++ program built with plain g++ against the public header (libipc/registry.h)
// shares a domain with Node: its registrations reach a Node watch() and `libipc ls`, its death is known from its
// lease, Node's registrations and group claims are seen by C++, and group claims compare-and-swap across both.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type CppChild, compileCpp, noCompiler, spawnCpp } from '../../../test/cpp.js';
import { uniqueName } from '../../../test/helpers.js';
import type { RegistryChange } from '../src/index.js';
import { openRegistry } from './harness.js';

const source = fileURLToPath(new URL('./cpp/registry-peer.cc', import.meta.url));
const cli = fileURLToPath(new URL('../../cli/dist/bin.js', import.meta.url));
let peer: { bin: string; remove(): void } | undefined;
const children: CppChild[] = [];

function start(...args: string[]): CppChild {
  const c = spawnCpp(peer!.bin, args);
  children.push(c);
  return c;
}
async function run(...args: string[]): Promise<string[]> {
  const c = start(...args);
  expect(await c.exited).toEqual({ code: 0, signal: null });
  return c.lines;
}
async function next(changes: AsyncIterator<RegistryChange>): Promise<RegistryChange> {
  const n = await changes.next();
  if (n.done) throw new Error('watch ended');
  return n.value;
}

describe.skipIf(noCompiler !== undefined)(`C++ client ↔ Node registry${noCompiler ? ` (skipped: ${noCompiler})` : ''}`, () => {
  beforeAll(() => {
    peer = compileCpp(source);
  });
  afterAll(() => peer?.remove());
  afterEach(async () => {
    for (const c of children.splice(0)) await c.kill('SIGKILL');
  });

  it('a C++ registration reaches a Node watch() and `libipc ls`; its unregister too', async () => {
    const domain = uniqueName('cxreg');
    const r = openRegistry(domain);
    const changes = r.watch();
    const svc = start('register', domain, 'engine.cpp', 'lang=c++');
    await svc.line('registered');
    const reg = await next(changes);
    expect(reg.type).toBe('registered');
    expect(reg.entry).toMatchObject({ name: 'engine.cpp', pid: svc.pid, controlChannel: 'engine.cpp.ctl', replyChannel: 'engine.cpp.reply', meta: 'lang=c++' });
    expect(r.find('engine.cpp')).toMatchObject({ pid: svc.pid, leased: true });

    const ls = JSON.parse(execFileSync(process.execPath, [cli, 'ls', '--domain', domain, '--json'], { encoding: 'utf8' })) as Array<Record<string, unknown>>;
    expect(ls.find((e) => e.name === 'engine.cpp')).toMatchObject({ pid: svc.pid, alive: true });

    svc.tell('heartbeat');
    await svc.line('beat');
    expect(r.find('engine.cpp')?.heartbeatAt).toBeInstanceOf(Date);
    svc.tell('unregister');
    await svc.line('unregistered');
    expect(await next(changes)).toMatchObject({ type: 'unregistered', entry: { name: 'engine.cpp' } });
    expect(r.find('engine.cpp')).toBeUndefined();
  });

  it('a C++ process SIGKILLed: Node learns it from the death lease (waitForDeath says owner-died) and the entry goes', async () => {
    const domain = uniqueName('cxdeath');
    const r = openRegistry(domain);
    // 200 MiB touched: its teardown takes long enough that the lease (broken as its thread dies) comes first.
    const svc = start('register', domain, 'victim', '-', '200');
    await svc.line('registered', 60_000);
    const entry = r.find('victim')!;
    expect(entry.leased).toBe(true);
    const changes = r.watch();
    const order: string[] = [];
    const death = r.waitForDeath(entry, { timeoutMs: 20_000 }).then((how) => order.push(`death ${how}`));
    const exit = svc.exited.then(() => order.push('exit'));
    svc.child.kill('SIGKILL');
    await Promise.all([death, exit]);
    expect(order).toEqual(['death owner-died', 'exit']);
    expect(await next(changes)).toMatchObject({ type: 'removed-dead', entry: { name: 'victim', pid: svc.pid } });
    expect(r.find('victim')).toBeUndefined();
  });

  it('a watch sees every SIGKILLed C++ registrant go, killed the moment it was seen registered (40 rounds)', async () => {
    // The README's cpp-host.mjs, repeated: a small process dies fast, and its lease turns from held to broken
    // (its thread gone from /proc) before the kernel marks the word — a watch that read the leases twice could
    // see it held in one read and broken in the other, then neither watch nor collect it, and wait forever.
    const domain = uniqueName('cxkill');
    const r = openRegistry(domain);
    const changes = r.watch();
    for (let round = 0; round < 40; round++) {
      const svc = start('register', domain, 'victim', '-', '0');
      expect(await next(changes)).toMatchObject({ type: 'registered', entry: { name: 'victim', pid: svc.pid } });
      svc.child.kill('SIGKILL');
      expect(await next(changes)).toMatchObject({ type: 'removed-dead', entry: { name: 'victim', pid: svc.pid } });
      await svc.exited;
    }
    await changes.return?.();
  });

  it('Node registers → C++ finds and lists it; group claims compare-and-swap across both languages', async () => {
    const domain = uniqueName('cxfind');
    const r = openRegistry(domain);
    expect(r.register('node.svc', 'node.ctl', 'node.reply', { meta: 'from node' })).toBe(true);
    expect(await run('find', domain, 'node.svc')).toEqual([`found ${process.pid} node.ctl node.reply leased from node`]);
    expect(await run('list', domain)).toEqual([`entry node.svc ${process.pid}`, 'end']);
    expect(await run('find', domain, 'nobody')).toEqual(['missing']);

    expect(r.claimPrimary('pool', 'node-a', 0)).toBe(1);
    expect(await run('claim', domain, 'pool', 'cpp-b', '0')).toEqual(['lost 1']);
    expect(await run('claim', domain, 'pool', 'cpp-b', '1')).toEqual(['claimed 2']);
    expect(r.groupState('pool')).toEqual({ epoch: 2, primary: 'cpp-b' });
    expect(r.claimPrimary('pool', 'node-a', 1)).toBeUndefined();
    expect(r.claimPrimary('pool', 'node-a', 2)).toBe(3);
  });
});
