import { createArithmetic } from './arithmetic';
import { createCountdown } from './countdown';
import { TASK_NAMES, type Task, type TaskName } from './types';

const TASKS: Record<TaskName, Task> = {
  countdown: createCountdown(),
  arithmetic: createArithmetic(),
};

export function isTaskName(name: string): name is TaskName {
  return (TASK_NAMES as readonly string[]).includes(name);
}

/** The task with its default configuration. */
export function getTask(name: string): Task {
  if (!isTaskName(name)) throw new Error(`unknown task ${JSON.stringify(name)}; known tasks: ${TASK_NAMES.join(', ')}`);
  return TASKS[name];
}
