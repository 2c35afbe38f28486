import * as tf from '@tensorflow/tfjs';

/**
 * Scales grads so their global L2 norm is at most maxNorm (no-op below it). Returns the new
 * grads (caller disposes) and the norm before clipping.
 */
export function clipByGlobalNorm(grads: readonly tf.Tensor[], maxNorm: number): { grads: tf.Tensor[]; norm: number } {
  const norm = tf.tidy(
    () =>
      tf
        .addN(grads.map((g) => g.square().sum()))
        .sqrt()
        .dataSync()[0],
  );
  const scale = norm > maxNorm ? maxNorm / (norm + 1e-6) : 1;
  return { grads: grads.map((g) => (scale === 1 ? g.clone() : g.mul(scale))), norm };
}
