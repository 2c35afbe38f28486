/**
 * A campaign checkpoint's model as the CLI commands use it (eval, serve, export): one of our
 * transformer, or one trained from a pretrained base, rebuilt on that base (fetched into the cache
 * if remote, checked against the content hash the checkpoint names) with the checkpoint's weights
 * or LoRA adapters.
 */
import { loadConnection } from '../config/connection';
import { Llama } from '../model/llama';
import type { LlamaConfig } from '../model/llama-config';
import type { PolicyOrigin } from '../model/policy';
import { decodeAnyState, type TrainingState } from '../model/state';
import { Transformer } from '../model/transformer';
import { stateBytes, stateObjectOf } from '../activities/cache';
import { CheckpointError, CheckpointStore } from '../storage/checkpoints';
import { overridesFrom } from './args';
import { loadModelArg } from './pretrained';

export type CheckpointModel =
  | {
      family: 'ours';
      state: TrainingState;
      /** The checkpoint's model: the caller disposes it. */
      transformer(): Transformer;
    }
  | {
      family: 'llama';
      state: TrainingState<LlamaConfig>;
      origin: PolicyOrigin;
      base: Awaited<ReturnType<typeof loadModelArg>>;
      /** The checkpoint's model on its base (adapters unmerged): the caller disposes it. */
      llama(): Llama;
    };

/** The model in checkpoint `id` (its `state`, or an anchor's weights), on the stack `v` names. */
export async function loadCheckpointModel(id: string, v: Record<string, any>): Promise<CheckpointModel> {
  const store = new CheckpointStore(loadConnection(overridesFrom(v)).s3);
  let state;
  try {
    const manifest = await store.manifest(id);
    if (!manifest) throw new CheckpointError(`checkpoint ${id} does not exist (no committed manifest)`);
    const name = stateObjectOf(manifest.objects.map((o) => o.name));
    if (!name)
      throw new CheckpointError(`checkpoint ${id} holds no model (objects: ${manifest.objects.map((o) => o.name).join(', ') || 'none'})`);
    const { objects } = await store.load(id, [name]);
    state = decodeAnyState(stateBytes(id, objects));
  } finally {
    store.close();
  }
  if (!('architecture' in state.config)) {
    const ours = state as TrainingState;
    return { family: 'ours', state: ours, transformer: () => new Transformer(ours.config, ours.weights) };
  }
  const origin = (state.extra as { origin?: PolicyOrigin } | undefined)?.origin;
  if (!origin) throw new CheckpointError(`checkpoint ${id} is of a Llama-family model but names no base`);
  const base = await loadModelArg(origin.base.uri, v, origin.base.sha256);
  const s = state as TrainingState<LlamaConfig>;
  return {
    family: 'llama',
    state: s,
    origin,
    base,
    llama: () =>
      origin.lora ? new Llama(s.config, base.weights, { config: origin.lora, weights: s.weights }) : new Llama(s.config, s.weights),
  };
}
