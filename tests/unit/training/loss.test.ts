import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { maskedNllSum } from '../../../training/loss';
import { useBackend } from '../model/helpers';

useBackend();

describe('maskedNllSum', () => {
  it('matches a hand computation on a tiny case', () => {
    // B=1, T=3, V=3. Row logits and the NLL of the target:
    //   t0: [0, 0, 0]          target 2 -> ln 3                        (masked out)
    //   t1: [ln 2, 0, 0]       target 0 -> -ln(2/4) = ln 2
    //   t2: [0, ln 3, 0]       target 2 -> -ln(1/5) = ln 5
    const logits = tf.tensor3d([
      [
        [0, 0, 0],
        [Math.log(2), 0, 0],
        [0, Math.log(3), 0],
      ],
    ]);
    const targets = tf.tensor2d([[2, 0, 2]], undefined, 'int32');
    const mask = tf.tensor2d([[0, 1, 1]]);
    expect(maskedNllSum(logits, targets, mask).dataSync()[0]).toBeCloseTo(Math.log(2) + Math.log(5), 6);
    const all = tf.tensor2d([[1, 1, 1]]);
    expect(maskedNllSum(logits, targets, all).dataSync()[0]).toBeCloseTo(Math.log(3) + Math.log(2) + Math.log(5), 6);
    tf.dispose([logits, targets, mask, all]);
  });

  it('its gradient is softmax - onehot on counted positions, zero elsewhere', () => {
    const logits = tf.tensor3d([
      [
        [1, 2, 3],
        [0.5, -1, 0],
      ],
    ]);
    const targets = tf.tensor2d([[1, 0]], undefined, 'int32');
    const mask = tf.tensor2d([[1, 0]]);
    const g = tf
      .grad((x: tf.Tensor) => maskedNllSum(x as tf.Tensor3D, targets, mask))(logits)
      .dataSync();
    const e = [1, 2, 3].map(Math.exp);
    const z = e[0] + e[1] + e[2];
    [e[0] / z, e[1] / z - 1, e[2] / z, 0, 0, 0].forEach((v, i) => expect(g[i]).toBeCloseTo(v, 6));
    tf.dispose([logits, targets, mask]);
  });
});
