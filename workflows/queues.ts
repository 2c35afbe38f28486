/**
 * Task queues: the GPU queue runs training and held-out evaluation, the eval queue the fanned-out
 * inference-scaling points, the CPU queue synthesis, anchor refreshes and promotion.
 */
export const QUEUES = { gpu: 't1-gpu', eval: 't1-eval', cpu: 't1-cpu' } as const;
export type Role = keyof typeof QUEUES;
