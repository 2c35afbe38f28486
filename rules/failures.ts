/**
 * Every failure type t1 raises or meets, and whether a retry can fix it: the one table that the
 * workers (which fail an activity as non-retryable), the workflows' retry policies and the CLI
 * (which prints a complete message without a stack trace) all read. Types are error names: our
 * classes set `name` to the class name; the S3 SDK names a refusal by its error code.
 * Pure: no Temporal, no I/O (the workflow bundle imports it).
 */
export interface FailureClass {
  /** A later attempt can succeed (a fault of the moment), or cannot (only a person can fix it). */
  retryable: boolean;
  /** Why, in a few words (shown in the README's table). */
  why: string;
}

const userMistake = (why: string): FailureClass => ({ retryable: false, why });
const transient = (why: string): FailureClass => ({ retryable: true, why });

export const FAILURES: Record<string, FailureClass> = {
  // What the user asked for cannot work: fix the input.
  UserError: userMistake('a mistake in what was asked'),
  ConfigError: userMistake('a config value refused by its schema or by the worker’s grants'),
  ZodError: userMistake('input refused by its schema'),
  UsageError: userMistake('a command-line mistake'),
  HyperparameterError: userMistake('a hyper-parameter change refused'),
  PresetError: userMistake('an unknown or invalid preset'),
  TaskFileError: userMistake('a task file that cannot serve the config'),
  GgufError: userMistake('a GGUF file t1 cannot read'),
  SafetensorsError: userMistake('a safetensors file t1 cannot read'),
  HfDirError: userMistake('an incomplete Hugging Face model directory'),
  TokenizerError: userMistake('a tokenizer t1 cannot build'),
  PretrainedFormatError: userMistake('a model architecture or setting t1 cannot compute'),
  ModelSourceError: userMistake('a model URI that names nothing, or content that is not the pinned hash'),
  // Stored data that waiting does not repair.
  CheckpointError: userMistake('a checkpoint that does not exist (deleted, or never committed)'),
  CheckpointConflictError: userMistake('a checkpoint id committed before with other content'),
  CheckpointCorruptError: userMistake('stored bytes that do not match their manifest'),
  StateError: userMistake('a training state that does not decode'),
  // S3 refusing the credentials: every attempt would be refused, and would burn other campaigns' attempts.
  InvalidAccessKeyId: userMistake('S3 does not know the access key'),
  SignatureDoesNotMatch: userMistake('S3 refused the secret key'),
  AccessDenied: userMistake('S3 denies these credentials this bucket or key'),
  NoSuchBucket: userMistake('the S3 bucket does not exist'),
  // Faults of the moment.
  CheckpointUploadError: transient('an upload that did not verify; the retry uploads again'),
  ComputeProcessExit: transient('a compute process died (killed, out of memory); another attempt starts a new one'),
  ComputeProcessHung: transient('a compute process showed no life for a heartbeat timeout and was killed'),
  ModelFetchError: transient('a model download cut short or unreachable'),
};

/** The types no retry policy retries. */
export const NON_RETRYABLE: string[] = Object.entries(FAILURES)
  .filter(([, c]) => !c.retryable)
  .map(([name]) => name);

/** Whether a failure of this type may be retried: unknown types are (a fault of the moment until shown otherwise). */
export function isRetryable(type: string): boolean {
  return FAILURES[type]?.retryable ?? true;
}

/** The type an error reports: its name where the table knows it (the S3 SDK's codes), else its class name. */
export function failureType(err: Error): string {
  return err.name in FAILURES ? err.name : (err.constructor?.name ?? err.name);
}
