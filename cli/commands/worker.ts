import { loadConnection } from '../../config/connection';
import { startWorkers, type WorkerRole } from '../../workers/worker';
import { QUEUES } from '../../workflows/queues';
import { connectionOptions, overridesFrom, UsageError, type Command } from '../args';

export const workerCommands: Command[] = [
  {
    path: ['worker'],
    summary:
      'Run a worker: --role gpu (training, evaluation), eval (inference-scaling points), cpu (synthesis, anchors, promotion), rollout (RL rollout shards) or all',
    usage: 'worker [--role gpu|eval|cpu|rollout|all]',
    options: { role: { type: 'string', default: 'all' }, ...connectionOptions },
    async run(v) {
      const roles = [...Object.keys(QUEUES), 'all'];
      if (!roles.includes(v.role)) throw new UsageError(`--role: expected one of ${roles.join(', ')}, got "${v.role}"`);
      const running = await startWorkers(loadConnection(overridesFrom(v)), v.role as WorkerRole);
      console.error(`[worker] role ${v.role}, backend ${running.backend}; Ctrl-C stops it`);
      const stop = () => void running.shutdown();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      await running.done;
    },
  },
];
