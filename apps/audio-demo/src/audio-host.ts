#!/usr/bin/env node
// audio-host [path-to-audio-service] [--json] [--buffers N] [--window N] [--domain NAME] [--engine node|cpp|mixed]
// Runs the demo (see host-flow.ts) and exits 0 only when every step passed. --json: the story goes to
// stderr and one JSON summary line to stdout. Ctrl-C stops the group and removes everything, exit 130.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { type EngineCommand, type EngineKind, engineCommand } from './cpp-engine.js';
import { DemoHost, type Summary } from './host-flow.js';
import { DEFAULT_DOMAIN } from './names.js';

function usage(why: string): never {
  console.error(`audio-host: ${why}\nusage: audio-host [path-to-audio-service] [--json] [--buffers N] [--window N] [--domain NAME] [--engine node|cpp|mixed]`);
  process.exit(2);
}

function options() {
  let parsed;
  try {
    parsed = parseArgs({
      allowPositionals: true,
      options: {
        json: { type: 'boolean', default: false },
        buffers: { type: 'string', default: '400' },
        window: { type: 'string', default: '8' },
        domain: { type: 'string', default: DEFAULT_DOMAIN },
        engine: { type: 'string', default: 'node' },
      },
    });
  } catch (err) {
    usage((err as Error).message);
  }
  const { values, positionals } = parsed;
  const buffers = Number(values.buffers);
  const window = Number(values.window);
  if (!Number.isInteger(buffers) || buffers < 8 || buffers > 100_000) usage(`--buffers must be a whole number from 8 to 100000, got ${values.buffers}`);
  if (!Number.isInteger(window) || window < 1 || window > 32) usage(`--window must be a whole number from 1 to 32, got ${values.window}`);
  const servicePath = positionals[0] ?? fileURLToPath(new URL('./audio-service.js', import.meta.url));
  if (!existsSync(servicePath)) usage(`no audio service at ${servicePath} (build it with pnpm turbo run build --filter @libipc/audio-demo...)`);
  const engine = values.engine as EngineKind;
  if (!['node', 'cpp', 'mixed'].includes(engine)) usage(`--engine must be node, cpp (the C++ engine) or mixed (instance 0 in C++, 1 in Node), got ${values.engine}`);
  return { json: values.json, buffers, window, domain: values.domain, servicePath, engine };
}

function report(s: Summary): string[] {
  if (!s.ok) return [`host: FAILED at step '${s.failedStep}': ${s.error}`];
  return [
    'host: summary',
    `  failover          ${s.failoverMs?.toFixed(1)} ms from kill to the new primary's first ack (promotion ${s.failoverDetectedMs?.toFixed(2)} ms after the exit was seen)`,
    `  gain read back    ${s.gainReadBack} on the new primary`,
    `  reload            ${s.reload?.replaced} instances replaced in ${s.reload?.ms} ms, ${s.reload?.epochChanges} epoch change (${s.reload?.previous} -> ${s.reload?.primary})`,
    `  audio             ${s.buffersVerified}/${s.buffersPlanned} buffers verified, ${s.lostBuffers} lost, ${s.resentBuffers} re-sent after the crash and the handover`,
    `  throughput        ${s.buffersPerSec} buffers/s; round trip p50 ${s.latencyMs?.p50.toFixed(3)} ms, p99 ${s.latencyMs?.p99.toFixed(3)} ms`,
    'host: done: every step passed',
  ];
}

const opts = options();
const print = opts.json ? (line: string) => console.error(line) : (line: string) => console.log(line);
let command: EngineCommand;
try {
  command = engineCommand(opts.engine, opts.servicePath, print);
} catch (err) {
  print(`host: FAILED at step 'build the C++ engine': ${(err as Error).message}`);
  process.exit(1);
}
const host = new DemoHost({ ...opts, command, print });

let interrupted = false;
process.on('SIGINT', () => {
  if (interrupted) process.exit(130); // a second Ctrl-C: leave now
  interrupted = true;
  print('host: Ctrl-C: stopping the group...');
  host.interrupt().then(
    () => {
      print('host: interrupted; group stopped, nothing left behind');
      process.exit(130);
    },
    (err: Error) => {
      print(`host: interrupted; clean-up failed: ${err.message}`);
      process.exit(1);
    },
  );
});

const summary = await host.run();
if (!interrupted) {
  for (const line of report(summary)) print(line);
  // Milliseconds to the microsecond are plenty.
  if (opts.json) console.log(JSON.stringify(summary, (_, v) => (typeof v === 'number' && !Number.isInteger(v) ? Math.round(v * 1000) / 1000 : v)));
  process.exit(summary.ok ? 0 : 1);
}
