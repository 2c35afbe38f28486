/** Task queues: the GPU queue runs training and generation, the CPU queue synthesis and reports. */
export const QUEUES = { gpu: 't1-gpu', cpu: 't1-cpu' } as const;
export type Role = keyof typeof QUEUES;
