import * as tf from '@tensorflow/tfjs';
import { logProbsOf } from '../model/sample';

/** Sum over positions where mask = 1 of -log softmax(logits)[target]: logits [B,T,V], targets/mask [B,T]. */
export function maskedNllSum(logits: tf.Tensor3D, targets: tf.Tensor2D, mask: tf.Tensor2D): tf.Scalar {
  return tf.tidy(() => logProbsOf(logits, targets).mul(mask).sum().neg() as tf.Scalar);
}
