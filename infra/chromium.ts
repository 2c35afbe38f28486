/**
 * Headless Chromium for looking at reports the way a person does (Debian's package). Installed on
 * demand where we are root with apt (CI machines); elsewhere an error says what to install.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const CANDIDATES = ['/usr/bin/chromium', '/usr/bin/chromium-browser'];

export function ensureChromium(log: (l: string) => void = () => {}): string {
  const found = CANDIDATES.find((p) => existsSync(p));
  if (found) return found;
  if (process.getuid?.() !== 0 || !existsSync('/usr/bin/apt-get'))
    throw new Error('headless Chromium is needed: install Debian\'s "chromium" package');
  log('installing chromium (apt-get) …');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execFileSync('apt-get', ['update', '-q'], { stdio: 'ignore', env });
  execFileSync('apt-get', ['install', '-y', '-q', '--no-install-recommends', 'chromium'], { stdio: 'ignore', env });
  return CANDIDATES.find((p) => existsSync(p)) ?? (() => { throw new Error('apt-get installed chromium but no binary was found'); })(); // prettier-ignore
}

/** A PNG screenshot of a page (file or http URL). */
export function screenshot(url: string, out: string, size = { width: 1200, height: 1600 }): void {
  const profile = mkdtempSync(join(tmpdir(), 't1-chromium-'));
  try {
    // No network beyond loopback here: background services would only fail and slow the start.
    const r = spawnSync(
      ensureChromium(),
      [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        `--user-data-dir=${profile}`,
        `--window-size=${size.width},${size.height}`,
        `--screenshot=${out}`,
        url,
      ],
      { encoding: 'utf8', timeout: 60_000 },
    );
    if (!existsSync(out)) throw new Error(`chromium wrote no screenshot (exit ${r.status}): ${r.stderr.slice(-500)}`);
  } finally {
    rmSync(profile, { recursive: true, force: true });
  }
}
