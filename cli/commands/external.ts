import { evaluateEndpoint, loadBenchmark } from '../../external/benchmark';
import { CompletionClient } from '../../tasks/openai';
import {
  DEFAULT_MAX_QUEUE,
  DEFAULT_REQUEST_TIMEOUT_MS,
  exposureError,
  MAX_TIMEOUT_MS,
  serveCheckpoint,
  type PretrainedServing,
} from '../../external/serve';
import { initBackend } from '../../model/backend';
import { Llama } from '../../model/llama';
import type { Transformer } from '../../model/transformer';
import { connectionOptions, UsageError, type Command } from '../args';
import { loadCheckpointModel } from '../checkpoint-model';
import { isModelArg, loadModelArg, MODEL_ARG_HELP } from '../pretrained';

function numberFlag(v: Record<string, any>, name: string, fallback: number, check: (x: number) => boolean, expected: string): number {
  if (v[name] === undefined) return fallback;
  const x = Number(v[name]);
  if (!check(x)) throw new UsageError(`--${name}: expected ${expected}, got "${v[name]}"`);
  return x;
}
const positiveInt = (x: number) => Number.isInteger(x) && x >= 1;

/** A campaign checkpoint, to serve: one of our transformer, or one trained from a pretrained base (in its chat format). */
async function checkpoint(id: string, v: Record<string, any>): Promise<{ model: Transformer | PretrainedServing; dispose: () => void }> {
  const m = await loadCheckpointModel(id, v);
  if (m.family === 'llama') {
    const llama = m.llama();
    return { model: { llama, tokenizer: m.base.tokenizer }, dispose: () => llama.dispose() };
  }
  const model = m.transformer();
  return { model, dispose: () => model.dispose() };
}

/** A pretrained model with its tokenizer and chat template, to serve. */
async function pretrained(arg: string, v: Record<string, any>): Promise<{ model: PretrainedServing; dispose: () => void }> {
  const base = await loadModelArg(arg, v);
  const llama = new Llama(base.config, base.weights);
  return { model: { llama, tokenizer: base.tokenizer }, dispose: () => llama.dispose() };
}

/** A progress bar redrawn in place on a terminal; on a pipe, a line every 10%. */
function progressBar(label: string): (p: { done: number; total: number; correct: number }) => void {
  let lastTenth = -1;
  return ({ done, total, correct }) => {
    const width = 24;
    const filled = Math.round((done / total) * width);
    const line = `${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total}  acc ${((100 * correct) / done).toFixed(1)}%`;
    if (process.stderr.isTTY) process.stderr.write(`\r${line}${done === total ? '\n' : ''}`);
    else if (Math.floor((10 * done) / total) > lastTenth) {
      lastTenth = Math.floor((10 * done) / total);
      process.stderr.write(`${line}\n`);
    }
  };
}

/** `t1 eval --endpoint`: an OpenAI-compatible endpoint on a JSONL benchmark. */
async function evalEndpoint(v: Record<string, any>): Promise<void> {
  for (const f of ['endpoint', 'model', 'benchmark']) if (!v[f]) throw new UsageError(`--${f} is required`);
  const samples = numberFlag(v, 'samples', 1, positiveInt, 'an integer >= 1');
  const temperature = numberFlag(v, 'temperature', samples > 1 ? 1 : 0, (x) => x >= 0, 'a number >= 0');
  const problems = await loadBenchmark(v.benchmark);
  const r = await evaluateEndpoint({
    client: new CompletionClient({ endpoint: v.endpoint, chat: v.chat }),
    model: v.model,
    problems,
    samples,
    concurrency: numberFlag(v, 'concurrency', 8, positiveInt, 'an integer >= 1'),
    maxTokens: numberFlag(v, 'max-tokens', 1024, positiveInt, 'an integer >= 1'),
    temperature,
    template: v.template,
    onProgress: progressBar(v.model),
  });
  if (v.json) return void console.log(JSON.stringify(r));
  const right = r.records.filter((x) => x.samples[0].correct).length;
  console.log(
    `${r.model} at ${r.endpoint}: accuracy ${(100 * r.accuracy).toFixed(1)}% (${right}/${r.problems}), pass@1 ${(100 * r.passAt1).toFixed(1)}% over ${r.samples} sample(s) at temperature ${temperature}`,
  );
}

/** A pretrained model served in this process on a free loopback port, for `t1 eval MODEL --benchmark`. */
async function serveLocally(
  arg: string,
  v: Record<string, any>,
): Promise<{ url: string; name: string; chat: boolean; close(): Promise<void> }> {
  await initBackend();
  const { model, dispose } = await pretrained(arg, v);
  const name = arg;
  // No max_tokens cap: the evaluator asks for --max-tokens whatever the context; generation stops at the context.
  const served = await serveCheckpoint({ model, name, port: 0, maxTokens: Number.POSITIVE_INFINITY });
  return {
    url: served.url,
    name,
    chat: model.tokenizer.chatTemplate !== undefined,
    close: async () => {
      await served.close();
      dispose();
    },
  };
}

export const externalCommands: Command[] = [
  {
    path: ['eval-endpoint'],
    summary: 'Evaluate an OpenAI-compatible completions endpoint, or a pretrained model, on a JSONL math benchmark',
    usage:
      'eval-endpoint --endpoint URL --model NAME --benchmark FILE.jsonl [--samples N] [--concurrency N] [--max-tokens N] [--temperature T] [--template T] [--chat] [--json]\n' +
      '   or: eval-endpoint MODEL --benchmark FILE.jsonl [...]: a pretrained model served in this process, chat through its template\n\n' +
      'Each line: {"problem"|"question"|"prompt": string, "answer": string, "id"?: string}. --template wraps the\n' +
      'problem text ("{problem}" is replaced). --temperature defaults to 0 (greedy) for one sample, 1 for several.\n' +
      'API key: env T1_OPENAI_API_KEY.',
    options: {
      endpoint: { type: 'string' },
      model: { type: 'string' },
      benchmark: { type: 'string' },
      samples: { type: 'string' },
      concurrency: { type: 'string' },
      'max-tokens': { type: 'string' },
      temperature: { type: 'string' },
      template: { type: 'string' },
      chat: { type: 'boolean' },
      json: { type: 'boolean' },
    },
    async run(v, pos) {
      // A pretrained MODEL instead of --endpoint: served in this process on loopback, chat through its template.
      const local = !v.endpoint && pos.length === 1 && isModelArg(pos[0]) ? await serveLocally(pos[0], v) : undefined;
      try {
        return await evalEndpoint(local ? { ...v, endpoint: local.url, model: local.name, chat: v.chat ?? local.chat } : v);
      } finally {
        await local?.close();
      }
    },
  },
  {
    path: ['serve'],
    summary:
      'Serve a checkpoint or a pretrained model behind the OpenAI API (POST /v1/completions, /v1/chat/completions with a chat template, GET /v1/models)',
    usage:
      'serve CHECKPOINT_ID|MODEL [--port N] [--host H] [--name NAME] [--api-key-env VAR] [--max-queue N] [--request-timeout S] [--max-tokens N]\n\n' +
      `MODEL: ${MODEL_ARG_HELP}.\n` +
      '--api-key-env: requests must send the key held in that environment variable (Authorization: Bearer ...);\n' +
      '  required with a --host other than loopback (127.0.0.1, ::1, localhost; the default is 127.0.0.1).\n' +
      `--max-queue: requests that may wait behind the one generating (default ${DEFAULT_MAX_QUEUE}); past that, 429 with Retry-After.\n` +
      `--request-timeout: seconds a request may wait and generate (default ${DEFAULT_REQUEST_TIMEOUT_MS / 1000}); past that, 504 and its generation stops.\n` +
      '--max-tokens: the largest max_tokens a request may ask for (default the model context); more is refused with 400.',
    options: {
      port: { type: 'string' },
      host: { type: 'string' },
      name: { type: 'string' },
      'api-key-env': { type: 'string' },
      'max-queue': { type: 'string' },
      'request-timeout': { type: 'string' },
      'max-tokens': { type: 'string' },
      ...connectionOptions,
    },
    async run(v, pos) {
      if (pos.length !== 1) throw new UsageError('expected exactly one checkpoint ID (<campaign>/<name>) or pretrained MODEL');
      const port = numberFlag(v, 'port', 8000, (x) => Number.isInteger(x) && x >= 0 && x < 65536, 'a port number');
      const keyEnv = v['api-key-env'];
      const apiKey = keyEnv === undefined ? undefined : process.env[keyEnv];
      if (keyEnv !== undefined && !apiKey) throw new UsageError(`--api-key-env: environment variable ${keyEnv} is not set`);
      const exposed = exposureError(v.host ?? '127.0.0.1', apiKey !== undefined);
      if (exposed) throw new UsageError(exposed);
      const maxQueue = numberFlag(v, 'max-queue', DEFAULT_MAX_QUEUE, (x) => Number.isInteger(x) && x >= 0, 'an integer >= 0');
      const timeoutS = numberFlag(
        v,
        'request-timeout',
        DEFAULT_REQUEST_TIMEOUT_MS / 1000,
        (x) => x > 0 && x * 1000 <= MAX_TIMEOUT_MS,
        `seconds > 0 (at most ${MAX_TIMEOUT_MS / 1000})`,
      );
      const maxTokens = v['max-tokens'] === undefined ? undefined : numberFlag(v, 'max-tokens', 0, positiveInt, 'an integer >= 1');
      const backend = await initBackend();
      const { model, dispose } = isModelArg(pos[0]) ? await pretrained(pos[0], v) : await checkpoint(pos[0], v);
      const served = await serveCheckpoint({
        model,
        name: v.name ?? pos[0],
        port,
        host: v.host,
        apiKey,
        maxQueue,
        requestTimeoutMs: timeoutS * 1000,
        maxTokens,
      });
      const limits = `at most ${maxQueue} queued, ${timeoutS} s per request${keyEnv ? `, API key from $${keyEnv}` : ''}`;
      console.error(
        `[serve] ${pos[0]} as model "${v.name ?? pos[0]}" at ${served.url} (backend ${backend.name}; ${limits}); Ctrl-C stops it`,
      );
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      await served.close();
      dispose();
    },
  },
];
