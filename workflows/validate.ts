/**
 * Validation of a workflow's input inside workflow code. A thrown ZodError would fail the workflow
 * *task*, which Temporal retries forever (a campaign started by hand, or by a Schedule created
 * before a schema change, would hang); a non-retryable ApplicationFailure fails the workflow,
 * naming every refused field. Workflow-safe: no node: imports, no tfjs.
 */
import { ApplicationFailure } from '@temporalio/workflow';
import type { z } from 'zod';

/** Issues named in a failure's message; the rest are counted. All of them are in its details. */
const MAX_ISSUES = 10;

/** `path: message` per issue on one line, as the CLI reports them (cli/format-error.ts). */
export function issuesLine(issues: readonly { path: readonly PropertyKey[]; message: string }[]): string {
  const named = issues.slice(0, MAX_ISSUES).map((i) => `${i.path.map(String).join('.') || '(root)'}: ${i.message.replace(/\s+/g, ' ')}`);
  const more = issues.length > MAX_ISSUES ? [`(${issues.length - MAX_ISSUES} more)`] : [];
  return [...named, ...more].join('; ');
}

/**
 * `schema.parse(input)`, except that a refused input fails the workflow: a non-retryable
 * ApplicationFailure of type ConfigError, e.g. `invalid campaign input: config.rl.epochs: Too small: ...`.
 */
export function parseOrFail<S extends z.ZodType>(schema: S, input: unknown, what: string): z.output<S> {
  const r = schema.safeParse(input);
  if (r.success) return r.data;
  const issues = r.error.issues.map((i) => ({ path: i.path.map(String), message: i.message }));
  throw ApplicationFailure.create({
    message: `invalid ${what}: ${issuesLine(r.error.issues)}`,
    type: 'ConfigError',
    nonRetryable: true,
    details: [{ issues }],
  });
}
