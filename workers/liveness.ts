/**
 * Heartbeats that do not depend on how long a step takes. A compute process runs a training step
 * as one synchronous stretch of tfjs ops; while it does, it cannot send anything, and a step of a
 * large model on a CPU outlasts any sensible heartbeat timeout. The worker process therefore
 * heartbeats for it, every fifth of the timeout, with the last details the child reported (its
 * resume point, still valid), as long as the child shows it is alive since the last look: it
 * answered a ping (its event loop is free: waiting on S3, say), sent a heartbeat, or its CPU time
 * grew (it is computing). A child that shows none of these for a whole heartbeat timeout is hung
 * (blocked on nothing, deadlocked): the watch says so and the caller kills it, so the activity
 * fails and is retried instead of holding its slot. A child spinning in a loop without end looks
 * alive; only startToCloseTimeout bounds that.
 */
import { readFileSync } from 'node:fs';

/** CPU time (user + system) of a process in clock ticks, from /proc; undefined where there is none (not Linux, or gone). */
export function cpuTicks(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count fields after its closing one.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15 of the line)
  } catch {
    return undefined;
  }
}

export interface LivenessOptions {
  pid: number;
  /** The activity's heartbeat timeout: a child silent and idle this long is hung. */
  timeoutMs: number;
  /** Sends a heartbeat with the latest details. */
  heartbeat: (details: unknown) => void;
  /** Called once when the child is judged hung, with how long it showed no sign of life. */
  onHung: (silentMs: number) => void;
  /** Asks the child to answer (`alive()` when it does). */
  ping: () => void;
  /** The details to repeat until the child reports newer ones. */
  details: unknown;
  /** Reads the child's CPU time (injectable for tests). */
  cpu?: (pid: number) => number | undefined;
  now?: () => number;
}

export class Liveness {
  private details: unknown;
  private lastSign: number;
  private answered = false;
  private lastCpu: number | undefined;
  private readonly timer: NodeJS.Timeout;
  private readonly cpu: (pid: number) => number | undefined;
  private readonly now: () => number;

  constructor(private readonly o: LivenessOptions) {
    this.cpu = o.cpu ?? cpuTicks;
    this.now = o.now ?? Date.now;
    this.details = o.details;
    this.lastSign = this.now();
    this.lastCpu = this.cpu(o.pid);
    // A fifth: one look that finds no sign still leaves the next heartbeat within half the timeout.
    this.timer = setInterval(() => this.tick(), Math.max(50, o.timeoutMs / 5));
    o.ping(); // so that the first look can already see an answer
    this.timer.unref();
  }

  /** The child sent a heartbeat: a sign of life, and the details to repeat from now on. */
  reported(details: unknown): void {
    this.details = details;
    this.lastSign = this.now();
    this.o.heartbeat(details);
  }

  /** The child answered a ping. */
  alive(): void {
    this.answered = true;
  }

  /** One look at the child (the timer calls this every fifth of the timeout). */
  tick(): void {
    const cpu = this.cpu(this.o.pid);
    // Without /proc there is no CPU reading: only messages and exit say anything, so never judge it hung.
    const busy = this.answered || cpu === undefined || this.lastCpu === undefined || cpu > this.lastCpu;
    this.lastCpu = cpu;
    this.answered = false;
    this.o.ping();
    const now = this.now();
    if (busy) {
      this.lastSign = now;
      this.o.heartbeat(this.details);
    } else if (now - this.lastSign >= this.o.timeoutMs) {
      this.stop();
      this.o.onHung(now - this.lastSign);
    }
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
