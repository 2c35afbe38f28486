/**
 * SFT data for a campaign: teacher traces for problems of the SFT pool, deterministic by seed.
 * Traces longer than the model's context are shortened by the teacher (fewer failed attempts).
 */
import { Prng } from '../util/prng';
import { sampleProblems } from './stream';
import type { SplitConfig, TeacherConfig } from '../config/task';
import { directTrace, writeTrace } from './teacher';
import type { Problem, TaskName, Trace } from './types';

export interface SftExample extends Trace {
  id: string;
  prompt: string;
}

export interface DatasetSpec {
  task: TaskName;
  difficulty: { min: number; max: number };
  splits: SplitConfig;
  seed: number;
  examples: number;
  style: 'trace' | 'direct';
  teacher: TeacherConfig;
}

export interface DatasetStats {
  examples: number;
  meanChars: number;
  maxChars: number;
  meanFailedAttempts: number;
  /** Problems skipped because even a trace without failed attempts was too long. */
  skipped: number;
}

export function synthesizeSft(spec: DatasetSpec): { examples: SftExample[]; stats: DatasetStats } {
  const rng = new Prng(spec.seed).fork('teacher');
  const examples: SftExample[] = [];
  let skipped = 0;
  // Draw more problems than needed: a few have no trace that fits.
  const problems = sampleProblems(Math.ceil(spec.examples * 1.2) + 16, {
    task: spec.task,
    split: 'train',
    pool: 'sft',
    seed: spec.seed,
    difficulty: spec.difficulty,
    splits: spec.splits,
  });
  for (const p of problems) {
    if (examples.length === spec.examples) break;
    const t = spec.style === 'direct' ? directTrace(p, rng) : writeTrace(p, rng, spec.teacher);
    if (!t) {
      skipped++;
      continue;
    }
    examples.push({ id: p.id, prompt: p.prompt, ...t });
  }
  if (examples.length < spec.examples)
    throw new Error(`only ${examples.length} of ${spec.examples} SFT examples fit in ${spec.teacher.maxChars} characters`);
  const chars = examples.map((e) => e.prompt.length + e.reasoning.length + e.answer.length + e.verification.length);
  return {
    examples,
    stats: {
      examples: examples.length,
      meanChars: chars.reduce((a, b) => a + b, 0) / chars.length,
      maxChars: Math.max(...chars),
      meanFailedAttempts: examples.reduce((a, e) => a + e.failedAttempts, 0) / examples.length,
      skipped,
    },
  };
}

/** Held-out problems of a split, the same for every checkpoint evaluated with this seed. */
export function heldOut(spec: Pick<DatasetSpec, 'task' | 'difficulty' | 'splits' | 'seed'>, split: 'val' | 'test', n: number): Problem[] {
  return sampleProblems(n, { task: spec.task, split, seed: spec.seed, difficulty: spec.difficulty, splits: spec.splits });
}
