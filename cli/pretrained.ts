import { existsSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { loadConnection } from '../config/connection';
import { loadPretrained } from '../formats/pretrained';
import { resolveModel, type ResolvedModel } from '../formats/source';
import { makeS3Client } from '../storage/s3';
import { overridesFrom } from './args';

/** How the commands that take a pretrained MODEL describe it. */
export const MODEL_ARG_HELP =
  "a GGUF file or a Hugging Face model directory: a local path, s3://bucket/key (the stack's S3 settings) or " +
  'hf://org/name[@revision] (endpoint T1_HF_ENDPOINT, token HF_TOKEN), fetched once into the cache';

/**
 * True when a command's argument names a pretrained model (a URI, a path on this machine, or one
 * written as a path: `/abs/missing.gguf` is a missing file) rather than a checkpoint id.
 */
export function isModelArg(arg: string): boolean {
  return /^[a-z0-9]+:\/\//.test(arg) || existsSync(arg) || isAbsolute(arg) || /^\.\.?\//.test(arg) || arg.endsWith('.gguf');
}

/** The pretrained model a command's argument names, fetched into the cache if remote and checked against `sha256` when given. */
export async function loadModelArg(
  arg: string,
  v: Record<string, any>,
  sha256?: string,
): Promise<ReturnType<typeof loadPretrained> & { source: ResolvedModel; name: string }> {
  const s3 = arg.startsWith('s3://') ? makeS3Client(loadConnection(overridesFrom(v)).s3) : undefined;
  let source: ResolvedModel;
  try {
    source = await resolveModel(/^[a-z0-9]+:\/\//.test(arg) ? arg : resolve(arg), {
      s3,
      hfToken: process.env.HF_TOKEN || undefined,
      expectSha256: sha256,
      log: (l) => console.error(`[model] ${l}`),
    });
  } finally {
    s3?.destroy();
  }
  const name = arg
    .replace(/@[^/]*$/, '')
    .split('/')
    .filter(Boolean)
    .pop()!
    .replace(/\.gguf$/, '');
  return { ...loadPretrained(source.path), source, name };
}
