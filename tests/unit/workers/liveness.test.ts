/**
 * The worker heartbeats for a compute process whatever a step costs, and notices a hung one:
 * real child processes (a stand-in speaking the compute protocol), a mock activity context with a
 * 1 s heartbeat timeout.
 */
import { MockActivityEnvironment } from '@temporalio/testing';
import { ApplicationFailure } from '@temporalio/common';
import { fileURLToPath } from 'node:url';
import { getPriority } from 'node:os';
import { afterAll, describe, expect, it } from 'vitest';
import { NO_GRANTS } from '../../../util/grants';
import { COMPUTE_NICENESS, ComputePool } from '../../../workers/compute';
import { cpuTicks, Liveness } from '../../../workers/liveness';

const TIMEOUT_MS = 2000;
const pool = new ComputePool(
  { s3: {} as never, temporal: {} as never },
  NO_GRANTS,
  fileURLToPath(new URL('./stand-in-child.ts', import.meta.url)),
);
let activities: Record<string, (input: { ms: number }) => Promise<unknown>>;
afterAll(() => pool.close());

/** Runs one activity in a mock context with the test's heartbeat timeout; the times of its heartbeats. */
async function run(name: string, ms: number): Promise<{ result: unknown; beats: number[]; error?: unknown; elapsed: number }> {
  activities ??= (await pool.start()).activities as never;
  const env = new MockActivityEnvironment({ heartbeatTimeoutMs: TIMEOUT_MS });
  const beats: number[] = [];
  const t0 = Date.now();
  env.on('heartbeat', () => beats.push(Date.now() - t0));
  try {
    const result = await env.run(() => activities[name]({ ms }));
    return { result, beats, elapsed: Date.now() - t0 };
  } catch (error) {
    return { result: undefined, beats, error, elapsed: Date.now() - t0 };
  }
}

/** The longest stretch without a heartbeat, from the start to the end of the call. */
function longestGap(beats: number[], end: number): number {
  const times = [0, ...beats, end];
  return Math.max(...times.slice(1).map((t, i) => t - times[i]));
}

describe('heartbeats independent of step length', () => {
  it('a step computing for 2 heartbeat timeouts (event loop blocked) completes, never half a timeout without a heartbeat', async () => {
    const r = await run('compute', 2 * TIMEOUT_MS);
    expect(r.error).toBeUndefined();
    expect(r.result).toBe(true);
    expect(longestGap(r.beats, r.elapsed)).toBeLessThanOrEqual(TIMEOUT_MS / 2);
  });

  it('a step waiting on I/O (no CPU, event loop free) stays alive through its pings', async () => {
    const r = await run('wait', 2 * TIMEOUT_MS);
    expect(r.error).toBeUndefined();
    expect(longestGap(r.beats, r.elapsed)).toBeLessThanOrEqual(TIMEOUT_MS / 2);
  });

  it('a hung process (blocked, no CPU) is killed about one heartbeat timeout after its last sign of life, and its activity fails retryably', async () => {
    const r = await run('hang', 60_000);
    expect(r.error).toBeInstanceOf(ApplicationFailure);
    expect(r.error).toMatchObject({ type: 'ComputeProcessHung', nonRetryable: false });
    expect((r.error as Error).message).toMatch(/^compute process \d+ hung: no CPU time, message or answer for 2\.\d s; killed$/);
    // Killed long before the step's 60 s: silence is judged from the process's last sign of life (the
    // message says 2.x s), and a loaded CI machine may add start-up and a look's period on top.
    expect(r.elapsed).toBeLessThan(3 * TIMEOUT_MS);
    // The pool replaces the dead process: the next call runs.
    expect((await run('compute', 100)).result).toBe(true);
  });
});

describe('Liveness', () => {
  it('reads a live process’s CPU time from /proc and none for a missing one', () => {
    expect(cpuTicks(process.pid)).toBeGreaterThanOrEqual(0);
    expect(cpuTicks(2 ** 22 + 12345)).toBeUndefined();
  });

  it('repeats the latest reported details, and judges hung only after a whole timeout without any sign', () => {
    let now = 0;
    let cpu = 100;
    const beats: unknown[] = [];
    const hung: number[] = [];
    let pings = 0;
    const w = new Liveness({
      pid: 1,
      timeoutMs: 1000,
      details: 'resume-a',
      heartbeat: (d) => beats.push(d),
      onHung: (ms) => hung.push(ms),
      ping: () => pings++,
      cpu: () => cpu,
      now: () => now,
    });
    w.stop(); // driven by hand below
    now = 250;
    cpu = 101;
    w.tick(); // computing: heartbeat with the initial details
    w.reported('resume-b'); // the child's own heartbeat goes through
    now = 500;
    cpu = 102;
    w.tick();
    expect(beats).toEqual(['resume-a', 'resume-b', 'resume-b']);
    now = 1000;
    w.tick(); // idle and silent for 500 ms: no heartbeat, not yet hung
    w.alive(); // answered the ping
    now = 1250;
    w.tick(); // an answer is a sign of life
    expect(beats).toHaveLength(4);
    now = 2000;
    w.tick();
    expect(hung).toEqual([]);
    now = 2250;
    w.tick(); // a whole timeout since the last sign
    expect(hung).toEqual([1000]);
    expect(pings).toBe(7); // one at the start, one a look
  });

  it('runs compute processes at a lower CPU priority than the worker, whose answers come first', async () => {
    const { result } = await run('niceness', 0);
    expect(result).toBe(COMPUTE_NICENESS);
    expect(result).toBeGreaterThan(getPriority()); // niceness: higher is lower priority
  });
});
