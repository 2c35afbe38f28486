/**
 * A trainable language model as SFT, RL and evaluation use it: our character-level transformer, or
 * a pretrained Llama-family base (fully fine-tuned or with LoRA adapters) in its chat format
 * (model/chat-policy.ts). The trainers see only this: the trainable variables, a forward pass, a
 * decoder for generation and one for scoring, and the format that writes prompts and reads
 * responses.
 */
import type * as tf from '@tensorflow/tfjs';
import type { Prng } from '../util/prng';
import type { ModelConfig } from './config';
import type { LlamaConfig } from './llama-config';
import type { LoraConfig } from './lora-config';
import type { NamedArrays } from './params';
import type { KvDecoder } from './kv-cache';
import type { Example, ParsedResponse, Trace } from './tokenizer';

/** How a model's prompts are written and its responses read (model/tokenizer.ts, formats/chat-format.ts). */
export interface ResponseFormat {
  encodePrompt(prompt: string): number[];
  buildExample(t: Trace): Example;
  parseResponse(ids: ArrayLike<number>): ParsedResponse;
}

/** The pretrained base a policy was trained from, named by its content hash (formats/source). */
export interface BaseRef {
  uri: string;
  sha256: string;
}

/** Where a pretrained policy's weights come from: its base, and the adapters' hyper-parameters when it trains LoRA only. */
export interface PolicyOrigin {
  base: BaseRef;
  lora?: LoraConfig;
}

/** A forward pass without gradients over whole sequences (the anchor's scoring). */
export interface Scorer {
  logits(tokens: tf.Tensor2D): tf.Tensor3D;
  dispose(): void;
}

export interface Policy {
  readonly config: ModelConfig | LlamaConfig;
  /** What an optimizer updates (a LoRA policy's adapters only), in the order of `names`. */
  readonly variables: tf.Variable[];
  readonly names: string[];
  readonly format: ResponseFormat;
  /** Absent for our transformer (its config is everything); a pretrained policy's base and adapters. */
  readonly origin?: PolicyOrigin;
  /** Causal forward pass, int32 tokens [B,T] -> logits [B,T,V]; `dropout` draws training-time masks (LoRA) from that stream. */
  forward(tokens: tf.Tensor2D, dropout?: Prng): tf.Tensor3D;
  /** The model as generation drives it (model/sample.ts). */
  decodable(): Decodable;
  scorer(): Scorer;
  /** The trainable weights by name (`variables`). */
  getWeights(): NamedArrays;
  setWeights(weights: NamedArrays): void;
  /** this := other (same config and trainable names). */
  copyFrom(other: Policy): void;
  /** this := lam * this + (1 - lam) * other. */
  emaFrom(other: Policy, lam: number): void;
  paramCount(): number;
  dispose(): void;
}

/** A KV-cache decoder as `generate` drives it (model/decode.ts, model/llama-decode.ts). */
export type StepDecoder = Pick<KvDecoder, 'prefill' | 'step' | 'keySlots' | 'keepRows' | 'dispose'>;

/** What generation needs of a model: its context, its vocabulary, the token that ends a response and a decoder. */
export interface Decodable {
  contextLength: number;
  vocabSize: number;
  eos: number;
  decoder(): StepDecoder;
}
