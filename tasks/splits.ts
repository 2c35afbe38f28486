/**
 * Train/val/test splits and the SFT/RL pools inside train, decided by hashing the problem's id
 * (itself a hash of its content): the same problem always lands in the same place, whatever seed
 * or order produced it, so the sets are disjoint by construction.
 */
import { SplitConfigSchema, type SplitConfig } from './config';
import { unitHash } from './hash';
import type { Problem } from './types';

export type Split = 'train' | 'val' | 'test';
export type Pool = 'sft' | 'rl';

export const DEFAULT_SPLITS: SplitConfig = SplitConfigSchema.parse({});

export function splitOf(problem: Pick<Problem, 'id'>, cfg: SplitConfig = DEFAULT_SPLITS): Split {
  const u = unitHash(`split\n${problem.id}`);
  if (u < cfg.val) return 'val';
  if (u < cfg.val + cfg.test) return 'test';
  return 'train';
}

/** The pool of a train problem; null outside train. Hashed apart from the split, so independent of it. */
export function poolOf(problem: Pick<Problem, 'id'>, cfg: SplitConfig = DEFAULT_SPLITS): Pool | null {
  if (splitOf(problem, cfg) !== 'train') return null;
  return unitHash(`pool\n${problem.id}`) < cfg.sft ? 'sft' : 'rl';
}
