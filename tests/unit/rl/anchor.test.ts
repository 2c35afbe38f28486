import { createHash } from 'node:crypto';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { Transformer } from '../../../model/transformer';
import { decodeState } from '../../../model/state';
import { anchorAfterStep, encodeAnchor, copyPolicyToAnchor } from '../../../rl/anchor';
import { rlConfig } from '../../../rl/config';
import { Prng } from '../../../util/prng';
import { tinyConfig, useBackend } from '../model/helpers';

useBackend();

let policy: Transformer;
let anchor: Transformer;
beforeAll(() => {
  policy = new Transformer(tinyConfig(), new Prng(1));
  anchor = new Transformer(tinyConfig(), new Prng(2));
});

const anchorCfg = (over: object) => rlConfig({ anchor: over }).anchor;
const bump = (m: Transformer, by: number) => tf.tidy(() => m.variables.forEach((v) => v.assign(v.add(by))));

describe('anchor modes', () => {
  it('refresh copies the policy, and later policy updates do not reach the anchor', () => {
    const a = new Transformer(tinyConfig(), new Prng(3));
    copyPolicyToAnchor(a, policy);
    const copied = a.getWeights();
    expect(copied).toEqual(policy.getWeights());
    bump(policy, 0.5);
    expect(a.getWeights()).toEqual(copied);
    bump(policy, -0.5);
    a.dispose();
  });

  it('ema blends lambda * anchor + (1 - lambda) * policy after each step', () => {
    const a = new Transformer(tinyConfig(), anchor.getWeights());
    const [w0, p] = [a.getWeights(), policy.getWeights()];
    anchorAfterStep(a, policy, anchorCfg({ mode: 'ema', emaLambda: 0.75 }));
    const w1 = a.getWeights();
    for (const name of a.names) w1[name].forEach((x, j) => expect(x).toBeCloseTo(0.75 * w0[name][j] + 0.25 * p[name][j], 6));
    // lambda = 1 keeps the anchor, lambda = 0 jumps to the policy
    anchorAfterStep(a, policy, anchorCfg({ mode: 'ema', emaLambda: 1 }));
    expect(a.getWeights()).toEqual(w1);
    anchorAfterStep(a, policy, anchorCfg({ mode: 'ema', emaLambda: 0 }));
    expect(a.getWeights()).toEqual(p);
    a.dispose();
  });

  it('frozen and refresh anchors do not move after a step', () => {
    const before = anchor.getWeights();
    for (const mode of ['frozen', 'refresh'] as const) anchorAfterStep(anchor, policy, anchorCfg({ mode }));
    expect(anchor.getWeights()).toEqual(before);
  });

  it('serialises like a checkpoint, named by the sha256 of its bytes', () => {
    const { bytes, sha256 } = encodeAnchor({ config: anchor.config, weights: anchor.getWeights() });
    expect(sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
    expect(encodeAnchor({ config: anchor.config, weights: anchor.getWeights() }).sha256).toBe(sha256);
    const s = decodeState(bytes);
    const back = new Transformer(s.config, s.weights);
    expect(back.config).toEqual(anchor.config);
    expect(back.getWeights()).toEqual(anchor.getWeights());
    expect(encodeAnchor({ config: back.config, weights: back.getWeights() }).sha256).toBe(sha256);
    bump(back, 1e-3);
    expect(encodeAnchor({ config: back.config, weights: back.getWeights() }).sha256).not.toBe(sha256);
    back.dispose();
  });
});
