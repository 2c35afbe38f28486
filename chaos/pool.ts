/**
 * The chaos suite's worker pool: `t1 worker --role …` child processes that it SIGKILLs and starts
 * again, as a crashed pod would be restarted. A worker that exits on its own (e.g. its S3 preflight
 * failed during an outage) is started again after a pause; each exit is reported.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { join } from 'node:path';

export interface PoolWorker {
  /** 1, 2, … in start order: how the log names it. */
  n: number;
  role: string;
  pid: number;
  child: ChildProcess;
  /** The last lines it wrote (stdout and stderr). */
  tail: string[];
}

export class WorkerPool {
  private next = 1;
  private readonly live = new Map<number, PoolWorker>();
  private readonly expected = new Set<number>();
  private stopping = false;
  /** Exits nobody asked for (a worker refusing to start during an outage, a crash): [worker, code or signal]. */
  readonly unexpectedExits: { n: number; role: string; how: string }[] = [];

  constructor(
    private readonly env: NodeJS.ProcessEnv,
    private readonly logDir: string,
    private readonly log: (line: string) => void,
  ) {}

  start(role: string): PoolWorker {
    const n = this.next++;
    const child = spawn(process.execPath, ['bin/t1.js', 'worker', '--role', role], {
      cwd: process.cwd(),
      env: this.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const file: WriteStream = createWriteStream(join(this.logDir, `worker-${n}.log`));
    const w: PoolWorker = { n, role, pid: child.pid!, child, tail: [] };
    const keep = (d: Buffer) => {
      file.write(d);
      w.tail.push(...d.toString('utf8').split('\n').filter(Boolean));
      if (w.tail.length > 40) w.tail.splice(0, w.tail.length - 40);
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    child.once('exit', (code, signal) => {
      file.end();
      this.live.delete(n);
      if (this.stopping || this.expected.delete(n)) return;
      const how = signal ?? `code ${code}`;
      this.unexpectedExits.push({ n, role, how });
      this.log(`worker ${n} (${role}) exited by itself (${how}): ${w.tail.at(-1) ?? ''}; starting another in 3 s`);
      setTimeout(() => {
        if (!this.stopping) this.start(role);
      }, 3000);
    });
    this.live.set(n, w);
    this.log(`start worker ${n} (${role}, pid ${w.pid})`);
    return w;
  }

  byPid(pid: number): PoolWorker | undefined {
    return [...this.live.values()].find((w) => w.pid === pid);
  }

  workers(role?: string): PoolWorker[] {
    return [...this.live.values()].filter((w) => role === undefined || w.role === role);
  }

  /** Freezes a worker (SIGSTOP), so that what it holds stays held while the caller looks. */
  freeze(w: PoolWorker): void {
    w.child.kill('SIGSTOP');
  }

  thaw(w: PoolWorker): void {
    w.child.kill('SIGCONT');
  }

  /** kill -9, then a fresh worker of the same role (as an orchestrator restarts a crashed pod). */
  async killAndReplace(w: PoolWorker): Promise<PoolWorker> {
    await this.kill(w);
    return this.start(w.role);
  }

  async kill(w: PoolWorker): Promise<void> {
    if (w.child.exitCode !== null || w.child.signalCode !== null) return;
    this.expected.add(w.n);
    const exited = new Promise((r) => w.child.once('exit', r));
    w.child.kill('SIGKILL');
    await exited;
  }

  /** Stops every worker (SIGKILL: what they run is finished or abandoned by then). */
  async stopAll(): Promise<void> {
    this.stopping = true;
    await Promise.all([...this.live.values()].map((w) => this.kill(w)));
  }
}
