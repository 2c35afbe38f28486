/** A checkpoint's manifest: written last, it is what makes a checkpoint exist. */
import { createHash } from 'node:crypto';
import { z } from 'zod';

export const CAMPAIGN_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
export const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
/** A checkpoint id is `<campaign>/<name>`, so the campaign is part of every reference. */
export const CheckpointId = z.string().refine((s) => {
  const [c, n, ...rest] = s.split('/');
  return rest.length === 0 && CAMPAIGN_RE.test(c ?? '') && NAME_RE.test(n ?? '');
}, 'expected a checkpoint id <campaign>/<name> (letters, digits, ".", "_", "-")');

export const CheckpointKind = z.enum(['proof', 'dataset', 'sft', 'rl', 'anchor', 'partial', 'eval', 'filter']);

export const ObjectEntry = z.object({
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, 'expected an object name of letters, digits, ".", "_", "-"'),
  key: z.string(),
  size: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
});

export const ManifestSchema = z.object({
  format: z.literal('t1.checkpoint/1'),
  id: CheckpointId,
  kind: CheckpointKind,
  campaign: z.string().regex(CAMPAIGN_RE),
  step: z.number().int().nonnegative(),
  parent: CheckpointId.nullable(),
  configHash: z.string().min(1),
  created: z.iso.datetime(),
  backend: z.string().min(1),
  /** Small facts worth seeing next to the checkpoint (metrics, seeds); never tensors. */
  meta: z.record(z.string(), z.unknown()).default({}),
  objects: z.array(ObjectEntry).min(1),
});
export type Manifest = z.infer<typeof ManifestSchema>;
export type ObjectEntry = z.infer<typeof ObjectEntry>;

/** What a retried commit must match to be a no-op: the content, not the time it was written. */
export function contentIdentity(m: Pick<Manifest, 'id' | 'kind' | 'step' | 'parent' | 'configHash' | 'objects'>): string {
  const objects = [...m.objects].sort((a, b) => a.name.localeCompare(b.name)).map((o) => [o.name, o.size, o.sha256]);
  return JSON.stringify([m.id, m.kind, m.step, m.parent, m.configHash, objects]);
}

export function splitId(id: string): { campaign: string; name: string } {
  const [campaign, name] = CheckpointId.parse(id).split('/');
  return { campaign, name };
}

/** A small reference that crosses Temporal: never the bytes. */
export interface CheckpointRef {
  id: string;
  /** Digest of the checkpoint's content (every object's name and sha256). */
  sha256: string;
  step: number;
}

export function refOf(m: Manifest): CheckpointRef {
  return { id: m.id, sha256: contentDigest(m), step: m.step };
}

/** Bytes a checkpoint holds in the bucket (its objects; the manifest is small). */
export const sizeOf = (m: Pick<Manifest, 'objects'>): number => m.objects.reduce((s, o) => s + o.size, 0);

export function contentDigest(m: Pick<Manifest, 'objects'>): string {
  const lines = [...m.objects].sort((a, b) => a.name.localeCompare(b.name)).map((o) => `${o.name} ${o.sha256}\n`);
  return createHash('sha256').update(lines.join('')).digest('hex');
}
