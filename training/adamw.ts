/**
 * AdamW (Loshchilov & Hutter) on tf variables: Adam moments plus weight decay applied to the
 * weights directly (decoupled), not through the gradient. tf.train.adam has no decoupled decay
 * and its moments are not easy to serialise; these are plain named arrays.
 * Weight decay applies to matrices and embeddings (rank >= 2), not to layer-norm gains/shifts.
 */
import * as tf from '@tensorflow/tfjs';
import type { NamedArrays } from '../model/transformer';
import { AdamWConfigSchema, type AdamWConfig } from './adamw-config';

export { AdamWConfigSchema, type AdamWConfig };

export interface AdamWState {
  /** Updates applied so far (the bias-correction step count). */
  t: number;
  m: NamedArrays;
  v: NamedArrays;
}

export class AdamW {
  private t = 0;
  private readonly m: tf.Variable[];
  private readonly v: tf.Variable[];

  constructor(
    private readonly params: readonly tf.Variable[],
    private readonly names: readonly string[],
    private readonly config: AdamWConfig,
    state?: AdamWState,
  ) {
    const moment = (key: 'm' | 'v') =>
      params.map((p, i) => {
        const saved = state?.[key][names[i]];
        if (state && (!saved || saved.length !== p.size)) throw new Error(`optimizer state: "${key}.${names[i]}" missing or wrong size`);
        return tf.tidy(() => tf.variable(saved ? tf.tensor(saved, p.shape, 'float32') : tf.zerosLike(p), false));
      });
    this.m = moment('m');
    this.v = moment('v');
    this.t = state?.t ?? 0;
  }

  /** One update with learning rate `lr`; grads are in `params` order. */
  step(grads: readonly tf.Tensor[], lr: number): void {
    const { beta1, beta2, eps, weightDecay } = this.config;
    this.t += 1;
    const bc1 = 1 - beta1 ** this.t;
    const bc2 = 1 - beta2 ** this.t;
    tf.tidy(() => {
      this.params.forEach((p, i) => {
        const g = grads[i];
        const m = this.m[i].mul(beta1).add(g.mul(1 - beta1));
        const v = this.v[i].mul(beta2).add(g.square().mul(1 - beta2));
        this.m[i].assign(m);
        this.v[i].assign(v);
        let update = m.div(v.div(bc2).sqrt().add(eps)).mul(1 / bc1);
        if (weightDecay > 0 && p.rank >= 2) update = update.add(p.mul(weightDecay));
        p.assign(p.sub(update.mul(lr)));
      });
    });
  }

  getState(): AdamWState {
    const read = (vs: tf.Variable[]): NamedArrays => Object.fromEntries(vs.map((x, i) => [this.names[i], x.dataSync() as Float32Array]));
    return { t: this.t, m: read(this.m), v: read(this.v) };
  }

  dispose(): void {
    tf.dispose([...this.m, ...this.v]);
  }
}
