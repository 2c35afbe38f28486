/** Presets are data (presets/<name>.json): partial campaign configs validated by the campaign schema. */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ZodError } from 'zod';
import { CampaignConfigSchema, type CampaignConfig } from './campaign';
import { UserError } from '../util/errors';

const DIR = fileURLToPath(new URL('../presets/', import.meta.url));
const DEFAULT_TASK = CampaignConfigSchema.parse({}).task.name;

export class PresetError extends UserError {
  override name = 'ConfigError';
}

export function presetNames(): string[] {
  return readdirSync(DIR)
    .filter((f) => f.endsWith('.json'))
    .map((f) => basename(f, '.json'))
    .sort();
}

export function readPreset(name: string): Record<string, unknown> {
  const path = join(DIR, `${name}.json`);
  if (!/^[a-z0-9-]+$/.test(name) || !existsSync(path))
    throw new PresetError(`unknown preset "${name}"; presets: ${presetNames().join(', ')}`);
  return JSON.parse(readFileSync(path, 'utf8'));
}

/** Preset (or schema defaults), then a config file, then explicit overrides, validated once. */
export function resolveConfig(opts: { preset?: string; file?: string; overrides?: Record<string, unknown> }): CampaignConfig {
  let raw: Record<string, unknown> = opts.preset ? readPreset(opts.preset) : {};
  if (opts.file) {
    if (!existsSync(opts.file)) throw new PresetError(`config file ${opts.file} does not exist`);
    let fromFile: Record<string, unknown>;
    try {
      fromFile = JSON.parse(readFileSync(opts.file, 'utf8'));
    } catch (e) {
      throw new PresetError(`config file ${opts.file} is not valid JSON: ${(e as Error).message}`);
    }
    raw = deepMerge(raw, fromFile);
  }
  if (opts.overrides) raw = deepMerge(raw, opts.overrides);
  const r = CampaignConfigSchema.safeParse(raw);
  if (!r.success) throw new PresetError(`invalid campaign config${opts.file ? ` in ${opts.file}` : ''}:\n${formatIssues(r.error)}`);
  return r.data;
}

export function formatIssues(e: ZodError): string {
  return e.issues.map((i) => `  ${i.path.join('.') || '(root)'}: ${i.message}`).join('\n');
}

/** `b` over `a`, recursively; a layer that names another task does not inherit the task settings (difficulty) of the one below. */
function deepMerge(a: Record<string, any>, b: Record<string, any>): Record<string, any> {
  const out: Record<string, any> = { ...a };
  if (b.task?.name !== undefined && a.task && b.task.name !== (a.task.name ?? DEFAULT_TASK)) delete out.task;
  for (const [k, v] of Object.entries(b)) {
    out[k] = v && typeof v === 'object' && !Array.isArray(v) && out[k] && typeof out[k] === 'object' ? deepMerge(out[k], v) : v;
  }
  return out;
}
