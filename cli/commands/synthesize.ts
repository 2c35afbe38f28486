import { writeFile } from 'node:fs/promises';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { loadConnection } from '../../config/connection';
import { USER_ACCESS } from '../../util/grants';
import { resolveConfig } from '../../config/presets';
import { datasetSpec } from '../../rules/campaign';
import { CheckpointStore } from '../../storage/checkpoints';
import { synthesizeWithTeacher } from '../../tasks/dataset';
import type { TeacherStats } from '../../tasks/endpoint-teacher';
import { pinAndLoadTaskFile, S3_URI } from '../../config/task-file';
import { connectionOptions, overridesFrom, UsageError, type Command } from '../args';

function intFlag(v: Record<string, any>, name: string): number | undefined {
  if (v[name] === undefined) return undefined;
  if (!/^\d+$/.test(v[name]) || Number(v[name]) < 1) throw new UsageError(`--${name}: expected an integer >= 1, got "${v[name]}"`);
  return Number(v[name]);
}

/** One line per 5% on a pipe, redrawn in place on a terminal. */
function teacherProgress(total: number): (t: TeacherStats) => void {
  let shown = -1;
  return (t) => {
    const line = `synthesize: ${t.accepted}/${total} traces  ${t.problems} problems asked  acceptance ${(100 * t.acceptance).toFixed(0)}%  requests ${t.requests}  cache hits ${t.cacheHits}`;
    if (process.stderr.isTTY) process.stderr.write(`\r${line}`);
    else if (Math.floor((20 * t.accepted) / total) > shown) {
      shown = Math.floor((20 * t.accepted) / total);
      process.stderr.write(`${line}\n`);
    }
  };
}

export const synthesizeCommands: Command[] = [
  {
    path: ['synthesize'],
    summary: 'Write SFT traces for a task ahead of a campaign (an endpoint teacher answers are cached in S3)',
    usage:
      'synthesize --out PATH|s3://BUCKET/KEY [--preset P | --config FILE] [--task T] [--file F (task jsonl)] [--teacher-url U --model M]\n' +
      '           [--examples N] [--tries N] [--concurrency N] [--chat] [--seed N] [--json]\n\n' +
      'Draws the SFT pool exactly as a campaign with the same config does; with an endpoint teacher every answer is\n' +
      'cached by (teacher config, problem, try), so that campaign (or a rerun) sends no request twice.\n' +
      'API key: the variable named by data.teacher.apiKeyEnv (default T1_OPENAI_API_KEY).\n' +
      'Runs with your own rights: worker grants (--allow-secret, ...) do not apply; read a config from someone else first,\n' +
      'as its data.teacher.url receives the variable its apiKeyEnv names.',
    options: {
      out: { type: 'string' },
      preset: { type: 'string' },
      config: { type: 'string' },
      task: { type: 'string' },
      file: { type: 'string' },
      'teacher-url': { type: 'string' },
      model: { type: 'string' },
      examples: { type: 'string' },
      tries: { type: 'string' },
      concurrency: { type: 'string' },
      chat: { type: 'boolean' },
      seed: { type: 'string' },
      json: { type: 'boolean' },
      ...connectionOptions,
    },
    async run(v) {
      if (!v.out) throw new UsageError('--out is required (a local path or s3://bucket/key)');
      if ((v['teacher-url'] === undefined) !== (v.model === undefined)) throw new UsageError('--teacher-url and --model go together');
      const teacher = v['teacher-url']
        ? {
            kind: 'endpoint',
            url: v['teacher-url'],
            model: v.model,
            chat: v.chat,
            tries: intFlag(v, 'tries'),
            concurrency: intFlag(v, 'concurrency'),
          }
        : undefined;
      const conn = loadConnection(overridesFrom(v));
      const store = new CheckpointStore(conn.s3);
      try {
        const { config, file } = await pinAndLoadTaskFile(
          resolveConfig({
            preset: v.preset ?? (v.config ? undefined : 'quick'),
            file: v.config,
            overrides: {
              ...((v.task || v.file) && { task: { name: v.task ?? 'jsonl', ...(v.file && { file: v.file }) } }),
              data: { ...(v.examples && { sftExamples: intFlag(v, 'examples') }), ...(teacher && { teacher }) },
              ...(v.seed !== undefined && { seed: intFlag(v, 'seed') }),
            },
          }),
          USER_ACCESS,
          store.client,
          'synthesis',
        );
        const spec = { ...datasetSpec(config), file };
        const {
          stats,
          teacher: t,
          jsonl: body,
        } = await synthesizeWithTeacher(spec, {
          access: USER_ACCESS, // the user's own process: no worker grant applies (README "Grants")
          cache: store,
          extraChars: config.model.extraChars,
          onTeacherProgress: teacherProgress(spec.examples),
        });
        if (t && process.stderr.isTTY) process.stderr.write('\n');
        const s3 = S3_URI.exec(v.out);
        if (s3) {
          await store.client
            .send(new PutObjectCommand({ Bucket: s3[1], Key: s3[2], Body: body, ContentType: 'application/x-ndjson', IfNoneMatch: '*' }))
            .catch((e) => {
              if (e?.$metadata?.httpStatusCode === 412) throw new UsageError(`--out: ${v.out} exists; objects are never overwritten`);
              throw e;
            });
        } else {
          await writeFile(v.out, body, { flag: 'wx' }).catch((e) => {
            if (e?.code === 'EEXIST') throw new UsageError(`--out: ${v.out} exists; choose another path`);
            throw e;
          });
        }
        const summary = { out: v.out, task: config.task.name, ...stats, ...(t && { teacher: t }) };
        if (v.json) return void console.log(JSON.stringify(summary));
        console.log(
          `${stats.examples} traces -> ${v.out} (${stats.fromSolutions} from worked solutions, ${stats.skipped} problems without a trace)` +
            (t
              ? `\nteacher: ${t.accepted}/${t.problems} problems accepted (${(100 * t.acceptance).toFixed(1)}%), ${t.requests} requests, ${t.cacheHits} answers from the cache`
              : ''),
        );
      } finally {
        store.close();
      }
    },
  },
];
