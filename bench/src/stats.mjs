// Small helpers shared by the benchmark scripts: percentiles and a plain-text table.
export function percentile(samples, p) {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

export function summarize(samples) {
  return { p50: percentile(samples, 50), p99: percentile(samples, 99), n: samples.length };
}

/** Prints rows (objects with the same keys) as a Markdown table, numbers with `digits` decimals. */
export function printTable(title, rows, digits = 1) {
  const keys = Object.keys(rows[0]);
  const fmt = (v) => (typeof v === 'number' ? v.toFixed(digits) : String(v));
  console.log(`\n### ${title}\n`);
  console.log(`| ${keys.join(' | ')} |`);
  console.log(`| ${keys.map(() => '---').join(' | ')} |`);
  for (const r of rows) console.log(`| ${keys.map((k) => fmt(r[k])).join(' | ')} |`);
}

export async function machine() {
  const os = await import('node:os');
  return `node ${process.version}, ${process.platform}-${process.arch}, ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'})`;
}

/**
 * Round trips of several peers ({ trip(), close() }), interleaved round by round so that a machine's changing load
 * hits all alike; the first `warmup` rounds are not counted. Returns each peer's summary (µs).
 */
export async function interleaved(peers, rounds, warmup) {
  const samples = peers.map(() => []);
  for (let i = 0; i < rounds + warmup; i++) {
    for (let p = 0; p < peers.length; p++) {
      const t0 = process.hrtime.bigint();
      await peers[p].trip();
      if (i >= warmup) samples[p].push(Number(process.hrtime.bigint() - t0) / 1000);
    }
  }
  for (const peer of peers) await peer.close();
  return samples.map(summarize);
}
