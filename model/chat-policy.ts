/**
 * A Llama-family model trained as a policy: the pretrained base (every weight trainable) or its LoRA
 * adapters on the frozen base, speaking through the base's chat format. Generation and scoring use
 * the KV-cache decoder (adapters merged once per decoder); training uses Llama.forward, where LoRA
 * dropout applies when the trainer passes a stream.
 */
import type * as tf from '@tensorflow/tfjs';
import type { Prng } from '../util/prng';
import type { Llama } from './llama';
import { llamaDecodable, LlamaDecoder } from './llama-decode';
import type { NamedArrays } from './params';
import type { Decodable, Policy, PolicyOrigin, ResponseFormat } from './policy';

export class ChatPolicy implements Policy {
  constructor(
    readonly model: Llama,
    readonly format: ResponseFormat,
    /** The token that ends the assistant's turn. */
    readonly eos: number,
    readonly origin: PolicyOrigin,
  ) {}

  get config() {
    return this.model.config;
  }
  get variables(): tf.Variable[] {
    return this.model.variables;
  }
  get names(): string[] {
    return this.model.names;
  }

  forward(tokens: tf.Tensor2D, dropout?: Prng): tf.Tensor3D {
    return this.model.forward(tokens, { dropout });
  }

  decodable(): Decodable {
    return llamaDecodable(this.model, this.eos);
  }

  scorer(): LlamaDecoder {
    return new LlamaDecoder(this.model);
  }

  getWeights(): NamedArrays {
    return this.model.getWeights();
  }

  setWeights(weights: NamedArrays): void {
    this.model.setWeights(weights);
  }

  copyFrom(other: Policy): void {
    this.model.copyFrom(this.same(other).model);
  }

  emaFrom(other: Policy, lam: number): void {
    this.model.emaFrom(this.same(other).model, lam);
  }

  paramCount(): number {
    return this.model.paramCount();
  }

  dispose(): void {
    this.model.dispose();
  }

  /** Another policy on the same base with the same adapters' shapes. */
  private same(other: Policy): ChatPolicy {
    if (!(other instanceof ChatPolicy) || other.origin.base.sha256 !== this.origin.base.sha256)
      throw new Error('models have different configs (another base)');
    return other;
  }
}
