/**
 * The KL anchor (T1 section 3, step 9). refresh: anchor := policy at the end of every E RL epochs
 * (the orchestrator asks `anchorRefreshDue` in rules/campaign and records each refresh); ema: anchor := lambda * anchor +
 * (1 - lambda) * policy after every step; frozen: never moves. An anchor serialises like any
 * checkpoint (model/state) and is named by the sha256 of those bytes.
 */
import { createHash } from 'node:crypto';
import type { NamedArrays } from '../model/params';
import type { Policy } from '../model/policy';
import { encodeWeights } from '../model/state';
import type { RlConfig } from './config';

type AnchorConfig = RlConfig['anchor'];

/** anchor := policy (a copy: later policy updates do not reach it). */
export function copyPolicyToAnchor(anchor: Policy, policy: Policy): void {
  anchor.copyFrom(policy);
}

/** Per-step anchor update: the EMA blend in ema mode, nothing otherwise. */
export function anchorAfterStep(anchor: Policy, policy: Policy, cfg: AnchorConfig): void {
  if (cfg.mode === 'ema') anchor.emaFrom(policy, cfg.emaLambda);
}

/**
 * The anchor as checkpoint bytes (its trainable weights only: no optimizer, step or Prng; a
 * pretrained policy's origin) and their sha256: a model, or a checkpoint's state taken as is.
 */
export function encodeAnchor(anchor: Pick<Policy, 'config' | 'origin'> & { weights: NamedArrays }): { bytes: Uint8Array; sha256: string } {
  const bytes = encodeWeights(anchor);
  return { bytes, sha256: createHash('sha256').update(bytes).digest('hex') };
}
