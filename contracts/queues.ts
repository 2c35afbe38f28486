/**
 * Task queues: the GPU queue runs training and held-out evaluation, the eval queue the fanned-out
 * inference-scaling points, the CPU queue synthesis, anchor refreshes and promotion, the rollout
 * queue RL rollout shards (rl.rollout.mode workers) and the workflows that fan them out.
 */
export const QUEUES = { gpu: 't1-gpu', eval: 't1-eval', cpu: 't1-cpu', rollout: 't1-rollout' } as const;
export type Role = keyof typeof QUEUES;
