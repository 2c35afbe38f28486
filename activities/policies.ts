/**
 * The policy a campaign trains, as its activities build it: our transformer from the config (or a
 * checkpoint), or a pretrained base (model.base) in its chat format, fully trainable or with LoRA
 * adapters (model.lora). A base is checked against the worker's grants, resolved (fetched into the
 * cache when remote, builtin:// provisioned), checked against the config's pinned content hash and
 * loaded once per process (the last one is kept: a base is hundreds of MB). A pretrained policy's
 * checkpoint holds what it trains (the adapters, or every weight) and names its base by that hash.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type { CampaignConfig } from '../config/campaign';
import { grantedModelSource, type WorkerAccess } from '../util/grants';
import { ChatFormat } from '../formats/chat-format';
import { loadPretrained } from '../formats/pretrained';
import { ModelSourceError, resolveModel } from '../formats/source';
import { ChatPolicy } from '../model/chat-policy';
import type { ModelConfig } from '../model/config';
import { Llama } from '../model/llama';
import type { LlamaConfig } from '../model/llama-config';
import { initLoraWeights } from '../model/lora';
import type { NamedArrays } from '../model/params';
import type { BaseRef, Policy, PolicyOrigin, ResponseFormat } from '../model/policy';
import { StateError, type TrainingState } from '../model/state';
import { tokenizerOf } from '../model/tokenizer';
import { Transformer } from '../model/transformer';
import { ConfigError } from '../util/errors';
import { Prng } from '../util/prng';

export interface LoadedBase {
  ref: BaseRef;
  config: LlamaConfig;
  weights: NamedArrays;
  format: ChatFormat;
  eos: number;
}

export class Policies {
  private last?: { sha256: string; base: Promise<LoadedBase> };

  constructor(
    private readonly access: WorkerAccess,
    private readonly s3: S3Client,
  ) {}

  /** The config's base, loaded (null for our transformer). */
  async base(config: CampaignConfig): Promise<LoadedBase | null> {
    const ref = config.model.base;
    if (!ref) return null;
    // Every call is checked against the grants, even when this process holds those bytes already.
    const granted = grantedModelSource(this.access.grants, 'model.base.uri', ref.uri, this.access.checkpointBucket);
    if ('error' in granted) throw new ConfigError(granted.error);
    if (this.last?.sha256 !== ref.sha256) {
      this.last = { sha256: ref.sha256, base: this.load(ref, granted.path) };
      this.last.base.catch(() => (this.last = undefined));
    }
    // The same bytes under this config's URI (its checkpoints name the base as their config does).
    return { ...(await this.last.base), ref };
  }

  /** The config's format for prompts and traces: the base's chat format, or our tokenizer. */
  async format(config: CampaignConfig): Promise<ResponseFormat> {
    const base = await this.base(config);
    return base ? base.format : tokenizerOf(config.model);
  }

  /** A fresh policy: our transformer initialised from `seed`, or the base with fresh adapters from `seed` (or all its weights). */
  async fresh(config: CampaignConfig, seed: number): Promise<Policy> {
    const init = new Prng(seed).fork('init');
    const base = await this.base(config);
    if (!base) return new Transformer(config.model, init);
    const lora = config.model.lora;
    const origin: PolicyOrigin = { base: base.ref, ...(lora && { lora }) };
    const llama = lora
      ? new Llama(base.config, base.weights, { config: lora, weights: initLoraWeights(base.config, lora, init) })
      : new Llama(base.config, base.weights);
    return new ChatPolicy(llama, base.format, base.eos, origin);
  }

  /** The policy of a checkpoint's state; `weights`: which of its arrays (default the state's own; an RL state's anchor, say). */
  async fromState(
    config: CampaignConfig,
    state: TrainingState<ModelConfig | LlamaConfig>,
    weights: NamedArrays = state.weights,
  ): Promise<Policy> {
    const origin = (state.extra as { origin?: PolicyOrigin } | undefined)?.origin;
    if (!('architecture' in state.config)) {
      if (config.model.base) throw new ConfigError('model.base: the checkpoint is one of our transformer, not of a pretrained base');
      return new Transformer(state.config, weights);
    }
    if (!origin) throw new StateError('state: a Llama-family state that names no base');
    const base = await this.base(config);
    if (!base || base.ref.sha256 !== origin.base.sha256)
      throw new ConfigError(
        `model.base: the checkpoint was trained from base ${origin.base.sha256.slice(0, 12)} (${origin.base.uri}), this config names ${base ? base.ref.sha256.slice(0, 12) : 'none'}`,
      );
    const llama = origin.lora ? new Llama(state.config, base.weights, { config: origin.lora, weights }) : new Llama(state.config, weights);
    return new ChatPolicy(llama, base.format, base.eos, origin);
  }

  /** `path`: the granted place to read (a local path's realpath, or the URI). */
  private async load(ref: BaseRef, path: string): Promise<LoadedBase> {
    const source = await resolveModel(path, {
      s3: this.s3,
      hfToken: process.env.HF_TOKEN || undefined,
      expectSha256: ref.sha256,
    }).catch((e: Error) => {
      throw e instanceof ModelSourceError ? new ConfigError(`model.base: ${e.message}`) : e;
    });
    const p = loadPretrained(source.path);
    if (!p.tokenizer.chatTemplate)
      throw new ConfigError(`model.base: ${ref.uri} has no chat template (a campaign prompts in the base's chat format)`);
    return { ref, config: p.config, weights: p.weights, format: new ChatFormat(p.tokenizer), eos: p.tokenizer.eosId };
  }
}
