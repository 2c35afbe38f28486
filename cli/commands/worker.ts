import { loadConnection } from '../../config/connection';
import { startWorkers } from '../../workers/worker';
import { QUEUES, type Role } from '../../workflows/queues';
import { connectionOptions, overridesFrom, UsageError, type Command } from '../args';

export const workerCommands: Command[] = [
  {
    path: ['worker'],
    summary:
      'Run a worker: --role gpu (training, evaluation), eval (inference-scaling points), cpu (synthesis, anchors, promotion), rollout (RL rollout shards) or all',
    usage: 'worker [--role gpu|eval|cpu|rollout|all, or a comma-separated list of roles]',
    options: { role: { type: 'string', default: 'all' }, ...connectionOptions },
    async run(v) {
      const roles = v.role === 'all' ? 'all' : (v.role.split(',') as Role[]);
      const bad = roles === 'all' ? [] : roles.filter((r) => !(r in QUEUES));
      if (bad.length || !roles.length)
        throw new UsageError(`--role: expected all or roles among ${Object.keys(QUEUES).join(', ')}, got "${v.role}"`);
      const running = await startWorkers(loadConnection(overridesFrom(v)), roles);
      console.error(`[worker] role ${v.role}, backend ${running.backend}; Ctrl-C stops it`);
      const stop = () => void running.shutdown();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      await running.done;
    },
  },
];
