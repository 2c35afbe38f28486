import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { AdamW, AdamWConfigSchema } from '../../../training/adamw';
import { clipByGlobalNorm } from '../../../training/clip';
import { useBackend } from '../model/helpers';

useBackend();

describe('AdamW', () => {
  const config = AdamWConfigSchema.parse({ beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.1 });

  it('matches a scalar reference: bias-corrected moments, decoupled decay on matrices only', () => {
    const w = tf.variable(
      tf.tensor2d([
        [0.5, -1],
        [2, 0.1],
      ]),
    );
    const g = tf.variable(tf.tensor1d([1, -2]));
    const opt = new AdamW([w, g], ['w', 'g'], config);
    const ref = { w: [0.5, -1, 2, 0.1], g: [1, -2] };
    const m = { w: [0, 0, 0, 0], g: [0, 0] };
    const v = { w: [0, 0, 0, 0], g: [0, 0] };
    const grads = [
      [
        [0.3, -0.2, 0.1, 0.0],
        [0.5, -0.5],
      ],
      [
        [-0.1, 0.4, 0.2, 1.0],
        [0.2, 0.1],
      ],
      [
        [0.05, 0.05, -0.3, -1],
        [-1, 1],
      ],
    ];
    grads.forEach(([gw, gg], t) => {
      const lr = 0.01 * (t + 1);
      opt.step([tf.tensor2d(gw, [2, 2]), tf.tensor1d(gg)], lr);
      for (const [key, grad, decay] of [
        ['w', gw, 0.1],
        ['g', gg, 0],
      ] as const) {
        ref[key].forEach((p, i) => {
          m[key][i] = 0.9 * m[key][i] + 0.1 * grad[i];
          v[key][i] = 0.99 * v[key][i] + 0.01 * grad[i] ** 2;
          const mh = m[key][i] / (1 - 0.9 ** (t + 1));
          const vh = v[key][i] / (1 - 0.99 ** (t + 1));
          ref[key][i] = p - lr * (mh / (Math.sqrt(vh) + 1e-8) + decay * p);
        });
      }
    });
    Array.from(w.dataSync()).forEach((x, i) => expect(x).toBeCloseTo(ref.w[i], 6));
    Array.from(g.dataSync()).forEach((x, i) => expect(x).toBeCloseTo(ref.g[i], 6));
    const state = opt.getState();
    expect(state.t).toBe(3);
    Array.from(state.m.w).forEach((x, i) => expect(x).toBeCloseTo(m.w[i], 6));
    Array.from(state.v.g).forEach((x, i) => expect(x).toBeCloseTo(v.g[i], 7));
    opt.dispose();
  });

  it('resumes from its state exactly', () => {
    const make = () =>
      tf.variable(
        tf.tensor2d([
          [1, 2],
          [3, 4],
        ]),
      );
    const grad = () =>
      tf.tensor2d([
        [0.1, -0.3],
        [0.2, 0.7],
      ]);
    const a = make();
    const optA = new AdamW([a], ['a'], config);
    for (let i = 0; i < 4; i++) optA.step([grad()], 0.01);
    const b = make();
    const optB1 = new AdamW([b], ['b'], config);
    for (let i = 0; i < 2; i++) optB1.step([grad()], 0.01);
    const saved = optB1.getState();
    const optB2 = new AdamW([b], ['b'], config, saved);
    for (let i = 0; i < 2; i++) optB2.step([grad()], 0.01);
    expect(b.dataSync()).toEqual(a.dataSync());
    expect(() => new AdamW([b], ['other'], config, saved)).toThrow(/m.other/);
  });
});

describe('clipByGlobalNorm', () => {
  it('scales all gradients by maxNorm / globalNorm only above maxNorm', () => {
    const grads = [tf.tensor1d([3, 0]), tf.tensor2d([[0, 4]])]; // norm 5
    const { grads: clipped, norm } = clipByGlobalNorm(grads, 1);
    expect(norm).toBeCloseTo(5, 6);
    expect(Array.from(clipped[0].dataSync())).toEqual([expect.closeTo(0.6, 5), 0]);
    expect(Array.from(clipped[1].dataSync())).toEqual([0, expect.closeTo(0.8, 5)]);
    const same = clipByGlobalNorm(grads, 10);
    expect(Array.from(same.grads[1].dataSync())).toEqual([0, 4]);
    tf.dispose([...grads, ...clipped, ...same.grads]);
  });
});
