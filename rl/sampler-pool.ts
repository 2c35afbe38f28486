/**
 * Sampler processes (rl.rollout.processes > 1 in local mode): the step's shards, whole sampler
 * calls (rl/config rolloutShards), go to child processes on this machine, each taking the next
 * shard when it comes free; so do the micro-batches of the anchor's scoring (rl/loss
 * scoringChunks). At RL batch sizes a decode step is a chain of small ops, and handing each to a
 * second TensorFlow thread costs more than it gives; so every child runs one thread
 * (TF_NUM_INTRAOP_THREADS=1) and the cores are used by processes instead. Rows keep their streams
 * and sampler calls, and a thread count changes no bit, so the samples and log-probs are those of
 * one process (tested). Children load the trainer's backend, get the weights once per step, and exit
 * when the trainer goes away; a child that dies fails the step (its activity retries it) and is
 * replaced on the next call.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ModelConfig } from '../model/config';
import type { Sample } from '../model/sample';
import { Transformer, type NamedArrays } from '../model/transformer';
import { shardBatch } from './config';
import { scoringChunks, type ResponseScores, type Scoring, type Sequence } from './loss';
import type { RolloutBatch, Rollouts } from './rollout';

/** Trainer -> sampler messages. */
export type ToSampler =
  | { type: 'weights'; role: 'policy' | 'anchor'; config: ModelConfig; weights: NamedArrays }
  | { type: 'sample'; id: number; batch: RolloutBatch }
  | { type: 'score'; id: number; seqs: Sequence[]; temperature: number };

/** Sampler -> trainer messages. */
export type FromSampler =
  | { type: 'ready'; backend: string }
  | { type: 'done'; id: number; result: Sample[] | ResponseScores }
  | { type: 'failed'; id: number; message: string };

/** A task for a process, before it gets its id. */
type Work = { type: 'sample'; batch: RolloutBatch } | { type: 'score'; seqs: Sequence[]; temperature: number };

const CHILD = fileURLToPath(new URL('./sampler-child.ts', import.meta.url));

class SamplerProcess {
  private pending: { id: number; resolve(r: FromSampler & { type: 'done' }): void; reject(e: Error): void } | null = null;
  private exit: Error | null = null;
  private nextId = 0;
  /** Shards this process has sampled (for tests). */
  shards = 0;

  private constructor(readonly child: ChildProcess) {
    child.on('message', (m: FromSampler) => this.receive(m));
    child.once('exit', (code, signal) => {
      this.exit = new Error(`sampler process ${child.pid} exited (${signal ?? `code ${code}`})`);
      this.pending?.reject(this.exit);
      this.pending = null;
    });
  }

  static async start(backend: string): Promise<SamplerProcess> {
    const child = fork(CHILD, [], {
      execArgv: ['--import', 'tsx'],
      serialization: 'advanced', // Float32Arrays cross as typed arrays, not JSON
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: { ...process.env, T1_BACKEND: backend, TF_NUM_INTRAOP_THREADS: '1', TF_NUM_INTEROP_THREADS: '1' },
    });
    const ready = await new Promise<Extract<FromSampler, { type: 'ready' }>>((resolve, reject) => {
      child.once('message', (m: FromSampler) =>
        m.type === 'ready' ? resolve(m) : reject(new Error(`sampler process: unexpected ${m.type}`)),
      );
      child.once('exit', (code, signal) =>
        reject(new Error(`sampler process exited while loading the ${backend} backend (${signal ?? `code ${code}`})`)),
      );
    });
    if (ready.backend !== backend) {
      child.kill();
      throw new Error(`sampler process loaded ${ready.backend}, the trainer runs ${backend}: their samples would differ`);
    }
    return new SamplerProcess(child);
  }

  get alive(): boolean {
    return this.exit === null;
  }

  send(m: ToSampler): void {
    if (this.alive) this.child.send(m);
  }

  sample(batch: RolloutBatch): Promise<Sample[]> {
    return this.request({ type: 'sample', batch }).then((r) => {
      this.shards++;
      return r as Sample[];
    });
  }

  score(seqs: Sequence[], temperature: number): Promise<ResponseScores> {
    return this.request({ type: 'score', seqs, temperature }) as Promise<ResponseScores>;
  }

  private request(work: Work): Promise<Sample[] | ResponseScores> {
    if (this.exit) return Promise.reject(this.exit);
    const id = this.nextId++;
    return new Promise<FromSampler & { type: 'done' }>((resolve, reject) => {
      this.pending = { id, resolve, reject };
      this.send({ ...work, id });
    }).then((m) => m.result);
  }

  private receive(m: FromSampler): void {
    const p = this.pending;
    if (!p || !('id' in m) || m.id !== p.id) return;
    this.pending = null;
    if (m.type === 'done') p.resolve(m);
    else if (m.type === 'failed') p.reject(new Error(`sampler process ${this.child.pid}: ${m.message}`));
  }

  kill(): void {
    this.child.kill('SIGTERM');
  }
}

export class SamplerPool {
  private procs: SamplerProcess[] = [];

  constructor(
    readonly size: number,
    private readonly backend: string,
  ) {}

  /** Shards sampled by each process so far. */
  get shardsPerProcess(): number[] {
    return this.procs.map((p) => p.shards);
  }

  /** The pool's processes, started (or replaced, where one died) as needed. */
  private async ready(): Promise<SamplerProcess[]> {
    this.procs = this.procs.filter((p) => p.alive);
    if (this.procs.length === this.size) return this.procs;
    const more = await Promise.all(Array.from({ length: this.size - this.procs.length }, () => SamplerProcess.start(this.backend)));
    this.procs.push(...more);
    const pids = more.map((p) => p.child.pid).join(', ');
    process.stderr.write(
      `[t1] sampler processes started: ${pids} (${this.backend}, one TensorFlow thread each; ${this.size} in the pool)\n`,
    );
    return this.procs;
  }

  /**
   * The samples of a batch's shards with the policy's current weights, in batch order. A batch of
   * fewer prompts than the step's (a dynamic-sampling refill) skips the shards past its end.
   */
  async sample(policy: Transformer, batch: RolloutBatch, shards: { first: number; count: number }[]): Promise<Sample[]> {
    const some = shards.filter((shard) => shard.first < batch.prompts.length);
    const parts = await this.spread('policy', policy, some, (p, shard) => p.sample(shardBatch(batch, shard)));
    return parts.flat();
  }

  /** responseLogProbs(anchor, seqs, microBatch, temperature), its micro-batches spread over the processes. */
  readonly score: Scoring = async (anchor, seqs, microBatch, temperature) => {
    if (!(anchor instanceof Transformer)) throw new Error('sampler processes score our transformer only');
    const chunks = scoringChunks(seqs, microBatch);
    const parts = await this.spread('anchor', anchor, chunks, (p, chunk) =>
      p.score(
        chunk.map((i) => seqs[i]),
        temperature,
      ),
    );
    const out: ResponseScores = { sums: new Array<number>(seqs.length), tokens: new Array<number[]>(seqs.length) };
    chunks.forEach((chunk, c) => chunk.forEach((i, j) => ((out.sums[i] = parts[c].sums[j]), (out.tokens[i] = parts[c].tokens[j]))));
    return out;
  };

  /** Sends the model's weights to every process, then runs the tasks, each process taking the next one when it comes free. */
  private async spread<T, R>(
    role: 'policy' | 'anchor',
    model: Transformer,
    tasks: T[],
    run: (p: SamplerProcess, task: T) => Promise<R>,
  ): Promise<R[]> {
    const procs = await this.ready();
    const weights: ToSampler = { type: 'weights', role, config: model.config, weights: model.getWeights() };
    for (const p of procs) p.send(weights);
    const out: R[] = new Array(tasks.length);
    let next = 0;
    await Promise.all(
      procs.map(async (p) => {
        try {
          for (let i = next++; i < tasks.length; i = next++) out[i] = await run(p, tasks[i]);
        } catch (err) {
          next = tasks.length; // the call has failed: the other processes take no further task
          throw err;
        }
      }),
    );
    return out;
  }

  close(): void {
    for (const p of this.procs) p.kill();
    this.procs = [];
  }
}

/** The sampler of a policy over a pool's processes: each call samples with the policy's weights at that moment. */
export const poolRollouts =
  (pool: SamplerPool, policy: Transformer, shards: { first: number; count: number }[]): Rollouts =>
  (batch) =>
    pool.sample(policy, batch, shards);

const pools = new Map<number, SamplerPool>();

/** This process's pool of n samplers on its backend, kept across activities (children exit with this process). */
export function samplerPool(n: number, backend: string): SamplerPool {
  let pool = pools.get(n);
  if (!pool) pools.set(n, (pool = new SamplerPool(n, backend)));
  return pool;
}
