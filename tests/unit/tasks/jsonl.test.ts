import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CampaignConfigSchema } from '../../../config/campaign';
import { loadGrants, USER_ACCESS } from '../../../util/grants';
import { greedyAccuracy } from '../../../evaluation/accuracy';
import { initBackend } from '../../../model/backend';
import { modelConfig } from '../../../model/config';
import { VOCAB_SIZE } from '../../../model/tokenizer';
import { Transformer } from '../../../model/transformer';
import { datasetSpec, decodeSettings } from '../../../rules/campaign';
import { Prng } from '../../../util/prng';
import { heldOut, synthesizeSft, validationTraces } from '../../../tasks/dataset';
import {
  jsonlVerifier,
  parseJsonlTask,
  solutionTrace,
  TaskFileError,
  normaliseText,
  extraCharsOf,
  type JsonlData,
} from '../../../tasks/jsonl';
import { getTask, getVerifier } from '../../../tasks/registry';
import { poolOf, splitOf } from '../../../tasks/splits';
import { sampleProblems } from '../../../tasks/stream';
import { loadTaskData, pinAndLoadTaskFile, pinTaskFile, poolErrors } from '../../../config/task-file';
import { ConfigError } from '../../../util/errors';
import { ExhaustedError, type Problem } from '../../../tasks/types';

const FILE = new URL('../../data/mini-math.jsonl', import.meta.url);
const body = readFileSync(FILE, 'utf8');
const data = parseJsonlTask('mini-math.jsonl', body, 'f'.repeat(64));

const config = (over: Record<string, unknown> = {}) =>
  CampaignConfigSchema.parse({
    task: { name: 'jsonl', file: 'mini-math.jsonl', sha256: 'f'.repeat(64) },
    data: { sftExamples: 40, valProblems: 8 },
    eval: { problems: 20, scaling: { problems: 10 } },
    ...over,
  });

describe('jsonl task file', () => {
  it('reads every line of the shipped file: field variants, numeric answers, difficulty, solutions, a Unicode times sign folded to ASCII', () => {
    expect(data.problems).toHaveLength(400);
    const byLine = new Map(data.problems.map((p) => [p.data.line, p]));
    expect(byLine.get(1)).toMatchObject({
      task: 'jsonl',
      prompt: 'What is 27 + 8?',
      difficulty: 2,
      data: { answer: '35', solution: '27 + 8 = 35\n#### 35' },
    });
    expect(byLine.get(4)!.data.solution).toBeUndefined();
    expect(data.problems.some((p) => p.prompt.includes('\u00d7'))).toBe(false);
    expect(body.includes('\u00d7')).toBe(true);
    expect(new Set(data.problems.map((p) => p.id)).size).toBe(400);
    expect(data.problems.filter((p) => p.data.solution !== undefined)).toHaveLength(300);
  });

  it('refuses a file with bad lines, naming every one with its line number and field', () => {
    const bad = [
      '{"problem": "What is 1 + 1?", "answer": "2"}',
      'not json',
      '{"problem": "What is 2 + 2?"}',
      '',
      '{"answer": "4"}',
      '{"problem": "What is 2\\u0007 * 2?", "answer": "4"}',
      '{"problem": "What is 1 + 1?", "answer": "2"}',
      '{"problem": "x", "answer": "1", "difficulty": 11}',
      '{"problem": "What is 5 + 5?", "answer": "10", "solution": "5 + 5 = 10\\u0000"}',
      '{"problem": "PRIVATE-TEXT-A", "answer": "1"',
      '{"problem": "PRIVATE-TEXT-B", "answer": true}',
    ].join('\n');
    let err: unknown;
    try {
      parseJsonlTask('bad.jsonl', bad, '0'.repeat(64));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TaskFileError);
    const lines = (err as Error).message.split('\n');
    expect(lines[0]).toBe('bad.jsonl: 9 bad line(s)');
    expect(lines.slice(1)).toEqual([
      'bad.jsonl:2: not JSON',
      'bad.jsonl:3: answer: required',
      'bad.jsonl:5: problem: needs one of "problem", "question" or "prompt"',
      'bad.jsonl:6: problem: character "\\u0007" (U+0007) is a control or unassigned character',
      'bad.jsonl:7: problem: the same problem as line 1',
      expect.stringMatching(/^bad\.jsonl:8: difficulty: Too big/),
      'bad.jsonl:9: solution: character "\\u0000" (U+0000) is a control or unassigned character',
      'bad.jsonl:10: not JSON (at character 44)',
      'bad.jsonl:11: answer: must be a string or a number',
    ]);
    // A worker's errors land in the campaign's history: no line's content is quoted.
    expect((err as Error).message).not.toMatch(/PRIVATE|not json|What is/);
  });

  it('folds typographic math signs and compatibility forms to ASCII, keeps other characters as extra tokens, refuses control characters', () => {
    expect(normaliseText('3 \u00d7 4 \u2212 \uff15 \u2264 x\u00b2\r\n')).toEqual({ text: '3 * 4 - 5 <= x2\n' });
    expect(normaliseText('\u221a2 = \u03c0?')).toEqual({ text: '\u221a2 = \u03c0?' });
    expect(normaliseText('a\u0007')).toEqual({ bad: '"\\u0007" (U+0007)' });
    expect(extraCharsOf(['\u221a2 = \u03c0?', 'x \u2208 \u03c0\n'])).toBe('\u03c0\u2208\u221a');
    expect(data.extraChars).toBe(''); // the shipped file's \u00d7 folds to *
    const pi = parseJsonlTask(
      'pi.jsonl',
      '{"problem": "What is \u221a4 * \u03c0?", "answer": "2\u03c0", "solution": "\u221a4 = 2"}\n',
      '1'.repeat(64),
    );
    expect(pi.extraChars).toBe('\u03c0\u221a');
  });

  it('checks answers with the math answer checker, for rewards and evaluation alike', () => {
    const p = data.problems.find((q) => q.data.answer === '35')!;
    expect(getVerifier('jsonl')).toBe(jsonlVerifier);
    expect(jsonlVerifier.verify(p, '35')).toBe(true);
    expect(jsonlVerifier.verify(p, '35.0')).toBe(true);
    expect(jsonlVerifier.verify(p, '70/2')).toBe(true);
    expect(jsonlVerifier.verify(p, '36')).toBe(false);
    expect(jsonlVerifier.parseAnswer('  ')).toBeNull();
    expect(() => getTask('jsonl')).toThrow(/no generator/);
  });

  it('turns a worked solution into a trace only when the answer it states is the reference', () => {
    const p = (solution: string): Problem<JsonlData> => ({
      task: 'jsonl',
      id: 'x',
      prompt: 'What is 6 * 6?',
      difficulty: 3,
      data: { answer: '36', solution, line: 1 },
    });
    expect(solutionTrace(p('6 * 6 = 36\n#### 36'))).toEqual({
      reasoning: '6 * 6 = 36\n#### 36\n',
      answer: '36',
      verification: '',
      failedAttempts: 0,
      steps: 2,
    });
    expect(solutionTrace(p('6 * 6 = 36'))!.answer).toBe('36'); // states no final answer: the reference is the answer line
    expect(solutionTrace(p('6 * 6 = 37\n#### 37'))).toBeNull();
    expect(solutionTrace(p('so the answer is \\boxed{37}'))).toBeNull();
  });
});

describe('jsonl problem streams', () => {
  it('draw each split from the file by content hash, disjoint, in a seeded order; RL repeats its pool, held-out runs out', () => {
    const spec = { ...datasetSpec(config()), file: data };
    const test = heldOut(spec, 'test', 20);
    expect(test.every((p) => splitOf(p) === 'test')).toBe(true);
    expect(heldOut(spec, 'test', 20)).toEqual(test);
    expect(heldOut({ ...spec, seed: spec.seed + 1 }, 'test', 20).map((p) => p.id)).not.toEqual(test.map((p) => p.id));
    const nTest = data.problems.filter((p) => splitOf(p) === 'test').length;
    expect(() => heldOut(spec, 'test', nTest + 1)).toThrow(ExhaustedError);
    expect(() => heldOut(spec, 'test', nTest + 1)).toThrow(`jsonl: the file has only ${nTest} problem(s) in test, difficulty 1..10`);
    const rlPool = data.problems.filter((p) => poolOf(p) === 'rl').length;
    const rl = sampleProblems(2 * rlPool, {
      task: 'jsonl',
      split: 'train',
      pool: 'rl',
      seed: 1,
      difficulty: { min: 1, max: 10 },
      exhausted: 'repeat',
      dataset: spec.dataset,
      file: data,
    });
    expect(rl.slice(rlPool)).toEqual(rl.slice(0, rlPool));
    expect(new Set(rl.map((p) => p.id)).size).toBe(rlPool);
    const hard = sampleProblems(5, { task: 'jsonl', split: 'test', seed: 1, difficulty: 3, dataset: spec.dataset, file: data });
    expect(hard.every((p) => p.difficulty === 3)).toBe(true);
  });

  it('synthesize SFT data from worked solutions, leaving out lines without one when no endpoint teacher is configured', async () => {
    const spec = { ...datasetSpec(config()), file: data };
    const { examples, stats } = await synthesizeSft(spec);
    expect(stats).toMatchObject({ examples: 40, fromSolutions: 40 });
    const problems = new Map(data.problems.map((p) => [p.id, p]));
    for (const e of examples) {
      const p = problems.get(e.id)!;
      expect(poolOf(p)).toBe('sft');
      expect(e.reasoning).toBe(`${p.data.solution}\n`);
      expect(jsonlVerifier.verify(p, e.answer)).toBe(true);
    }
    // Lines without a solution were drawn and skipped, not given a made-up trace.
    expect(stats.skipped).toBeGreaterThan(0);
    expect((await synthesizeSft(spec)).examples).toEqual(examples);
    const val = heldOut(spec, 'val', 8);
    expect(validationTraces(spec, val).map((v) => v.problem.id)).toEqual(
      val.filter((p) => p.data && (p.data as JsonlData).solution).map((p) => p.id),
    );
  });
});

describe('jsonl campaign config', () => {
  it('needs a file for task jsonl, takes none for a generated task, and defaults the difficulty range to all of 1..10', () => {
    const issues = (c: unknown) => CampaignConfigSchema.safeParse(c).error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    expect(issues({ task: { name: 'jsonl' } })).toEqual(['task.file: task jsonl needs task.file (a path or s3://bucket/key)']);
    expect(issues({ task: { name: 'countdown', file: 'x.jsonl' } })).toEqual(['task.file: task countdown takes no file']);
    expect(config().task.difficulty).toEqual({ min: 1, max: 10 });
    expect(CampaignConfigSchema.parse({}).task.difficulty).toEqual({ min: 3, max: 3 });
  });

  it('refuses, before anything starts, a config that asks more of the file than it has, naming each field', () => {
    const asks = config({ data: { sftExamples: 500, valProblems: 8 }, eval: { problems: 1000, scaling: { problems: 10 } } });
    const errors = poolErrors(asks, data);
    const sftWithSolution = data.problems.filter((p) => poolOf(p) === 'sft' && p.data.solution !== undefined).length;
    const test = data.problems.filter((p) => splitOf(p) === 'test').length;
    expect(errors).toEqual([
      `data.sftExamples: 500 wanted, but the file has ${sftWithSolution} SFT-pool problems with a solution (no endpoint teacher is configured) (difficulty 1..10)`,
      `eval.problems: 1000 wanted, but the file has ${test} test problems (difficulty 1..10)`,
    ]);
    expect(poolErrors(asks, data, 'synthesis')).toEqual(errors.slice(0, 1));
    expect(poolErrors(config({ model: { contextLength: 16 } }), data)[0]).toMatch(
      /^task\.file: \d+ problem\(s\) take the whole 12-character budget/,
    );
    expect(poolErrors(config(), data)).toEqual([]);
  });

  it('pins a file with characters beyond ASCII: the model config records them, and a model with that alphabet is evaluated on its problems', async () => {
    const dir = mkdtempSync(join(tmpdir(), 't1-pi-'));
    try {
      const file = join(dir, 'pi.jsonl');
      const lines = Array.from({ length: 60 }, (_, k) =>
        JSON.stringify({
          problem: `What is ${k + 2} \u03c0 / \u221a${(k + 2) ** 2}?`,
          answer: '\u03c0',
          solution: `\u221a${(k + 2) ** 2} = ${k + 2}`,
        }),
      );
      writeFileSync(file, lines.join('\n'));
      const { config: pinned, file: loaded } = await pinAndLoadTaskFile(
        config({ task: { name: 'jsonl', file }, data: { sftExamples: 5 } }),
        USER_ACCESS,
        undefined,
        'synthesis',
      );
      expect(pinned.model).toMatchObject({ extraChars: '\u03c0\u221a', vocabSize: VOCAB_SIZE + 2 });
      expect(pinned.task.file).toBe(file);
      await initBackend();
      const model = new Transformer(
        modelConfig({ ...pinned.model, contextLength: 48, dModel: 16, nLayers: 1, nHeads: 2, dFF: 32 }),
        new Prng(2),
      );
      try {
        const problems = heldOut({ ...datasetSpec(pinned), file: loaded }, 'test', 3);
        expect(problems.some((p) => p.prompt.includes('\u03c0'))).toBe(true);
        const r = await greedyAccuracy(model, problems, { ...decodeSettings(pinned), maxNewTokens: 8 });
        expect(r.problems).toBe(3);
        expect(jsonlVerifier.verify(problems[0] as Problem<JsonlData>, '\u03c0')).toBe(true);
      } finally {
        model.dispose();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('a worker reads a task file only where its grants allow', () => {
  const pinnable = (file: string) => config({ task: { name: 'jsonl', file } });

  it('refuses a local file outside its task directories before reading it, naming task.file; reads one inside; the CLI reads with the user’s rights', async () => {
    const dir = mkdtempSync(join(tmpdir(), 't1-grant-'));
    try {
      mkdirSync(join(dir, 'granted'));
      writeFileSync(join(dir, 'outside.jsonl'), 'not json: it would fail as a TaskFileError if it were read\n');
      writeFileSync(join(dir, 'granted', 'mini.jsonl'), body);
      symlinkSync(join(dir, 'outside.jsonl'), join(dir, 'granted', 'link.jsonl'));
      const access = { grants: loadGrants({ 'allow-task-dir': join(dir, 'granted') }, {}), checkpointBucket: 't1-checkpoints' };
      for (const file of [join(dir, 'outside.jsonl'), join(dir, 'granted', 'link.jsonl'), `${dir}/granted/../outside.jsonl`]) {
        const err = await pinTaskFile(pinnable(file), access).then(
          () => new Error('pinned'),
          (e: unknown) => e as Error,
        );
        expect(err).toBeInstanceOf(ConfigError);
        expect(err.message).toBe(
          `task.file: ${resolve(file)} is not an existing file under a task directory granted to this worker (grant one with --allow-task-dir or T1_ALLOW_TASK_DIRS)`,
        );
      }
      const pinned = await pinTaskFile(pinnable(join(dir, 'granted', 'mini.jsonl')), access);
      expect(pinned.task.sha256).toMatch(/^[0-9a-f]{64}$/);
      // `t1 campaign start` and `t1 synthesize` read with the user's own rights: no grant applies.
      await expect(pinTaskFile(pinnable(join(dir, 'outside.jsonl')), USER_ACCESS)).rejects.toThrow(TaskFileError);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a file the worker has already loaded when the grants do not cover it (no cache bypass), and buckets not granted', async () => {
    const access = { grants: loadGrants({}, {}), checkpointBucket: 't1-checkpoints' };
    // mini-math.jsonl with sha256 f…f is among the files this caller loaded: the check still runs.
    const loaded = new Map([[data.sha256, data]]);
    await expect(loadTaskData(config().task, undefined as never, access, loaded)).rejects.toThrow(
      /^task\.file: mini-math\.jsonl is not an existing file/,
    );
    await expect(loadTaskData(config().task, undefined as never, USER_ACCESS, loaded)).resolves.toBe(data);
    // A generated task has no file to load.
    await expect(loadTaskData(CampaignConfigSchema.parse({}).task, undefined as never, access)).resolves.toBeUndefined();
    const s3 = { ...config().task, file: 's3://someone-elses-bucket/p.jsonl' };
    await expect(loadTaskData(s3, undefined as never, access)).rejects.toThrow(/^task\.file: bucket "someone-elses-bucket" is not granted/);
  });
});

describe('a jsonl stream draws from the file its caller passes along', () => {
  it('refuses to draw without it, or from a file other than the pinned one', () => {
    const opts = { task: 'jsonl', split: 'test', seed: 1, difficulty: 3, dataset: data.sha256 } as const;
    expect(() => sampleProblems(1, opts)).toThrow(`jsonl dataset ${data.sha256}: its problems were not passed along`);
    expect(() => sampleProblems(1, { ...opts, dataset: 'e'.repeat(64), file: data })).toThrow(`the file passed along is ${data.sha256}`);
    expect(sampleProblems(1, { ...opts, file: data })).toHaveLength(1);
  });
});
