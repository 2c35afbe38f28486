/**
 * Next-token batches: sequences right-padded with PAD into inputs [B,T], targets [B,T]
 * (inputs shifted by one) and a float mask [B,T] that is 1 where the target counts.
 */
import * as tf from '@tensorflow/tfjs';
import { PAD, type Example } from './tokenizer';

export interface Batch {
  inputs: tf.Tensor2D; // int32
  targets: tf.Tensor2D; // int32
  mask: tf.Tensor2D; // float32
  /** Number of counted targets (sum of mask). */
  count: number;
}

/** T = longest sequence - 1; throws if that exceeds the model's context. Caller disposes the tensors. */
export function collate(examples: readonly Example[], contextLength: number): Batch {
  if (examples.length === 0) throw new Error('collate: empty batch');
  const T = Math.max(...examples.map((e) => e.tokens.length)) - 1;
  if (T < 1) throw new Error('collate: every sequence needs at least 2 tokens');
  if (T > contextLength) throw new Error(`collate: a sequence of ${T + 1} tokens exceeds contextLength ${contextLength} (+1)`);
  const B = examples.length;
  const inputs = new Int32Array(B * T).fill(PAD);
  const targets = new Int32Array(B * T).fill(PAD);
  const mask = new Float32Array(B * T);
  let count = 0;
  examples.forEach(({ tokens, lossMask }, b) => {
    if (lossMask.length !== tokens.length) throw new Error('collate: lossMask and tokens differ in length');
    for (let t = 0; t + 1 < tokens.length; t++) {
      inputs[b * T + t] = tokens[t];
      targets[b * T + t] = tokens[t + 1];
      mask[b * T + t] = lossMask[t + 1];
      count += lossMask[t + 1];
    }
  });
  return {
    inputs: tf.tensor2d(inputs, [B, T], 'int32'),
    targets: tf.tensor2d(targets, [B, T], 'int32'),
    mask: tf.tensor2d(mask, [B, T], 'float32'),
    count,
  };
}

export function disposeBatch(b: Batch): void {
  tf.dispose([b.inputs, b.targets, b.mask]);
}
