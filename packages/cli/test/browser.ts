// Headless Chromium from Debian for the dashboard tests, driven by playwright-core (never a browser download).
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { type Browser, chromium } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

// Without the background-networking flags Chromium keeps calling hosts this machine cannot reach.
const FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** Installs Debian's chromium when it is missing (as root only; one apt at a time across sessions). */
export function ensureChromium(): void {
  if (existsSync(CHROMIUM)) return;
  if (process.getuid?.() !== 0) throw new Error(`${CHROMIUM} is missing: install Debian's chromium package (apt-get install chromium) to run the dashboard tests`);
  execFileSync('flock', ['/tmp/libipc-apt.lock', 'sh', '-c', 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium'], {
    stdio: 'inherit',
    timeout: 15 * 60_000,
  });
}

export function launch(): Promise<Browser> {
  ensureChromium();
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS });
}

/** Chromium profile folders playwright made in /tmp (it removes its own on close). */
export function browserProfiles(): string[] {
  return readdirSync(tmpdir()).filter((f) => f.startsWith('playwright_chromiumdev_profile-'));
}
