/** Worker processes for benchmarks, resolved once they poll (their start is not what a bench measures). */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';

/**
 * `t1 worker --role <role>`, its stderr passed through. `core` pins it (and its compute
 * processes) to one core with taskset and one TensorFlow thread.
 */
export async function spawnWorker(role = 'all', core?: number): Promise<ChildProcess> {
  const args = ['bin/t1.js', 'worker', '--role', role];
  const pinned = core !== undefined && existsSync('/usr/bin/taskset');
  const child = spawn(pinned ? 'taskset' : process.execPath, pinned ? ['-c', String(core), process.execPath, ...args] : args, {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: core === undefined ? process.env : { ...process.env, TF_NUM_INTRAOP_THREADS: '1', TF_NUM_INTEROP_THREADS: '1' },
  });
  await new Promise<void>((resolve, reject) => {
    child.stderr!.on('data', (d) => {
      process.stderr.write(d);
      if (String(d).includes('[worker] role')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`worker (${role}) exited with ${code}`)));
  });
  return child;
}
