/** The default campaign id (readable, the same for a retried command) and the start flags' checks. */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../../config/presets';
import { campaignLabel, defaultCampaignId, startArgs } from '../../cli/campaign-start';
import { CAMPAIGN_RE } from '../../storage/manifest';

const ROOT = join(import.meta.dirname, '../..');
const smoke = resolveConfig({ preset: 'smoke' });
const day = new Date('2026-12-07T23:59:00Z');

describe('the default campaign id', () => {
  it('is <label>-<UTC date>-<6 hex of the config hash>, the same for the same config on the same day', () => {
    const id = defaultCampaignId('smoke', smoke, day);
    expect(id).toMatch(/^smoke-20261207-[0-9a-f]{6}$/);
    expect(defaultCampaignId('smoke', resolveConfig({ preset: 'smoke' }), new Date('2026-12-07T00:00:01Z'))).toBe(id);
  });

  it('changes with any setting, and the next UTC day', () => {
    const id = defaultCampaignId('smoke', smoke, day);
    expect(defaultCampaignId('smoke', resolveConfig({ preset: 'smoke', overrides: { seed: 2 } }), day)).not.toBe(id);
    expect(defaultCampaignId('smoke', smoke, new Date('2026-12-08T00:00:00Z'))).toMatch(/^smoke-20261208-/);
  });

  it("names a config file's campaign after the file, as an id that can name checkpoints", () => {
    expect(campaignLabel(undefined, '/runs/my run (v2).json')).toBe('my run (v2)');
    expect(campaignLabel('quick', 'x.json')).toBe('quick');
    for (const label of ['my run (v2)', '../..', '-x', 'é'.repeat(80)]) expect(defaultCampaignId(label, smoke, day)).toMatch(CAMPAIGN_RE);
    expect(defaultCampaignId('my run (v2)', smoke, day)).toMatch(/^my-run-v2-20261207-/);
  });
});

describe('start flags', () => {
  it('--priority: an integer from 1 to 5', () => {
    expect(startArgs({ priority: '1' }).priority).toBe(1);
    expect(startArgs({}).priority).toBeUndefined();
    for (const p of ['0', '6', '2.5', 'high'])
      expect(() => startArgs({ priority: p })).toThrow(`--priority: expected an integer from 1 (runs first) to 5 (runs last), got "${p}"`);
  });

  it('refuses a bad --priority in one line before contacting Temporal', () => {
    const r = spawnSync(process.execPath, [join(ROOT, 'bin/t1.js'), 'campaign', 'start', '--priority', '9'], {
      encoding: 'utf8',
      cwd: ROOT,
      env: { ...process.env, T1_TEMPORAL_ADDRESS: '127.0.0.1:9' },
    });
    expect(r.status).toBe(1);
    expect(r.stderr.trim()).toBe('t1 campaign start: --priority: expected an integer from 1 (runs first) to 5 (runs last), got "9"');
  });
});
