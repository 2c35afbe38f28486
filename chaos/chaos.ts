/**
 * The chaos suite's shared state: the stack it started, its worker pool, a Temporal client that is
 * replaced after a server restart, and the record of every disturbance (kills, restarts, outages),
 * each printed as it happens with the time since the start.
 */
import type { Client } from '@temporalio/client';
import type { ConnectionConfig, StackConfig } from '../config/connection';
import { startService, stopService } from '../infra/stack';
import { connectClient } from '../infra/temporal';
import type { CheckpointStore } from '../storage/checkpoints';
import type { PoolWorker, WorkerPool } from './pool';
import { heldActivities, sleep, stillHeld, type Held } from './watch';

export interface Kill {
  at: number;
  campaign: string;
  worker: number;
  role: string;
  activity: string;
  detail: string;
  /** Where the killed activity lives, to read its attempts from history afterwards. */
  workflowId: string;
  runId: string;
  activityId: string;
  /** The activity needed another attempt (from history, once its workflow is done). */
  landed?: boolean;
}

export interface ServiceEvent {
  at: number;
  service: 'temporal' | 's3';
  campaign: string;
  downSeconds: number;
  detail: string;
}

export class Chaos {
  readonly kills: Kill[] = [];
  readonly restarts: ServiceEvent[] = [];
  readonly outages: ServiceEvent[] = [];
  /** Disturbances that did not happen (their moment passed), by campaign. */
  readonly missed: { campaign: string; what: string }[] = [];
  private current: Client;
  private readonly retired: Client[] = [];
  private serviceLock: Promise<void> = Promise.resolve();

  constructor(
    readonly t0: number,
    readonly conn: ConnectionConfig,
    readonly stack: StackConfig,
    readonly store: CheckpointStore,
    readonly pool: WorkerPool,
    client: Client,
    private readonly out: (line: string) => void,
  ) {
    this.current = client;
  }

  seconds(): number {
    return Math.round((Date.now() - this.t0) / 100) / 10;
  }

  log(message: string): void {
    this.out(`[chaos +${this.seconds().toFixed(1)}s] ${message}`);
  }

  /** The Temporal client (a new one after each server restart). */
  client(): Client {
    return this.current;
  }

  async close(): Promise<void> {
    for (const client of [...this.retired, this.current]) await client.connection.close().catch(() => undefined);
  }

  /**
   * kill -9 the worker that holds `held`, then start another of its role. `freeze`: SIGSTOP it
   * first and kill only if the server still shows it holding the activity (a short activity may
   * finish between the look and the kill); returns false when it no longer did.
   */
  async killHolder(campaign: string, held: Held, detail: string, freeze = false): Promise<boolean> {
    const w = this.pool.byPid(held.pid);
    if (!w) return false;
    if (freeze) {
      this.pool.freeze(w);
      let still = false;
      try {
        still = await stillHeld(this.client(), held);
      } finally {
        if (!still) this.pool.thaw(w);
      }
      if (!still) return false;
    }
    await this.killWorker(campaign, w, held, detail);
    return true;
  }

  private async killWorker(campaign: string, w: PoolWorker, held: Held, detail: string): Promise<void> {
    this.log(`kill -9 worker ${w.n} (${w.role}, pid ${w.pid}) during ${held.type} of ${campaign} (${detail})`);
    this.kills.push({
      at: this.seconds(),
      campaign,
      worker: w.n,
      role: w.role,
      activity: held.type,
      detail,
      workflowId: held.workflowId,
      runId: held.runId,
      activityId: held.activityId,
    });
    await this.pool.killAndReplace(w);
  }

  /** The started activity of `type` in the workflow, if a worker of the pool holds it. */
  async holding(workflowId: string, types: string[]): Promise<Held | undefined> {
    const held = await heldActivities(this.client(), workflowId);
    return held.find((a) => types.includes(a.type) && this.pool.byPid(a.pid));
  }

  /** Stops the Temporal server, waits `downMs`, starts it again and connects a new client. */
  async restartTemporal(campaign: string, downMs: number, detail: string): Promise<void> {
    await this.exclusive(async () => {
      this.log(`stop the Temporal server (${detail}; down for ${(downMs / 1000).toFixed(1)} s)`);
      const at = this.seconds();
      await stopService(this.stack, 'temporal');
      await sleep(downMs);
      await startService(this.stack, 'temporal');
      // The old client stays open until the end: calls in flight on it (a campaign's result) retry on it.
      this.retired.push(this.current);
      this.current = await connectClient(this.conn.temporal);
      this.restarts.push({ at, service: 'temporal', campaign, downSeconds: Math.round((this.seconds() - at) * 10) / 10, detail });
      this.log(`Temporal server up again after ${(this.seconds() - at).toFixed(1)} s`);
    });
  }

  /** Stops the S3 server for `downMs`, then starts it again. */
  async s3Outage(campaign: string, downMs: number, detail: string): Promise<void> {
    await this.exclusive(async () => {
      this.log(`stop the S3 server for ${Math.round(downMs / 1000)} s (${detail})`);
      const at = this.seconds();
      await stopService(this.stack, 's3');
      this.log(`S3 server stopped (took ${(this.seconds() - at).toFixed(1)} s)`);
      await sleep(downMs);
      this.log('start the S3 server');
      await startService(this.stack, 's3');
      this.outages.push({ at, service: 's3', campaign, downSeconds: Math.round((this.seconds() - at) * 10) / 10, detail });
      this.log(`S3 server up again after ${(this.seconds() - at).toFixed(1)} s in all`);
    });
  }

  /** One server disturbance at a time. */
  private exclusive(f: () => Promise<void>): Promise<void> {
    const run = this.serviceLock.then(f);
    this.serviceLock = run.catch(() => undefined);
    return run;
  }
}
