import { createArithmetic } from './arithmetic';
import { createCountdown } from './countdown';
import { jsonlVerifier } from './jsonl';
import { ConfigError } from '../util/errors';
import { TASK_NAMES, type GeneratorName, type Task, type TaskName, type Verifier } from './types';

const GENERATED: Record<GeneratorName, Task> = {
  countdown: createCountdown(),
  arithmetic: createArithmetic(),
};

export function isTaskName(name: string): name is TaskName {
  return (TASK_NAMES as readonly string[]).includes(name);
}

function known(name: string): TaskName {
  if (!isTaskName(name)) throw new Error(`unknown task ${JSON.stringify(name)}; known tasks: ${TASK_NAMES.join(', ')}`);
  return name;
}

/** The answer check of any task: what rewards and evaluation use. */
export function getVerifier(name: string): Verifier {
  const n = known(name);
  return n === 'jsonl' ? jsonlVerifier : GENERATED[n];
}

/** A generated task with its default configuration; a JSONL task has no generator or search. */
export function getTask(name: string): Task {
  const n = known(name);
  if (n === 'jsonl') throw new ConfigError(`task.name: jsonl problems come from task.file; the jsonl task has no generator or search`);
  return GENERATED[n];
}
