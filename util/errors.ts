/**
 * Mistakes in what the user asked for: a bad config or input, a pool that cannot serve the config.
 * Retrying cannot fix them, so an activity that raises one fails at once (workers/compute marks it
 * non-retryable) and the CLI prints its message as one line. Subclasses set `name` to their class
 * name: Temporal reports it as the failure type.
 */
export class UserError extends Error {
  override name = 'UserError';
}

/** A configuration value that cannot work; the message starts with the field's path. */
export class ConfigError extends UserError {
  override name = 'ConfigError';
}
