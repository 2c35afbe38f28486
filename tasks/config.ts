/**
 * The task sections of a campaign config (splits, teacher): pure zod, apart from the task
 * generators, so the workflow bundle that validates configs does not carry them.
 */
import { z } from 'zod';
import { TEACHER_PROMPT } from './teacher-prompt';

/** Hash splits: each problem's split and pool follow from its id alone. */
export const SplitConfigSchema = z
  .object({
    val: z.number().min(0).max(1).default(0.1),
    test: z.number().min(0).max(1).default(0.1),
    /** Share of train that is SFT prompts; the rest are RL prompts. */
    sft: z.number().min(0).max(1).default(0.5),
  })
  .refine((c) => c.val + c.test < 1, { message: 'val + test must leave some train' });
export type SplitConfig = z.infer<typeof SplitConfigSchema>;

/** Longest prompt + trace in characters; 252 = a 256-token context less BOS, RESP, ANS, EOS. */
const maxChars = z.number().int().positive().default(252);

/** The programmatic teacher's trace mix (T1: trial and error, then self-verification). */
export const ProgrammaticTeacherSchema = z.object({
  kind: z.literal('programmatic').optional(),
  /** weights[k] is the relative frequency of traces with k failed attempts. */
  failedAttemptWeights: z
    .array(z.number().nonnegative())
    .min(1)
    .refine((w) => w.some((x) => x > 0), { message: 'some weight must be positive' })
    .default([0.25, 0.35, 0.25, 0.15]),
  /** Arithmetic: chance that a step in a failed attempt slips. */
  slipRate: z.number().min(0).max(1).default(0.3),
  maxChars,
});
export type ProgrammaticTeacher = z.infer<typeof ProgrammaticTeacherSchema>;

/**
 * An LLM behind an OpenAI-compatible endpoint writes the traces (T1 section 1: attempt, reflection,
 * retry, answer, verification); a trace is kept only when its final answer verifies.
 */
export const EndpointTeacherSchema = z.object({
  kind: z.literal('endpoint'),
  /** Base URL (`http://host:8000/v1`) or the full completions URL. Credentials go in the environment, never here. */
  url: z
    .string()
    .url()
    .refine((u) => !/^[a-z]+:\/\/[^/]*@/i.test(u), 'must not contain credentials; put the API key in the variable named by apiKeyEnv'),
  model: z.string().min(1),
  /** /v1/chat/completions with the prompt as one user message, instead of /v1/completions. */
  chat: z.boolean().default(false),
  /** Environment variable holding the API key (read by the worker; never recorded). */
  apiKeyEnv: z
    .string()
    .regex(/^[A-Z_][A-Z0-9_]*$/, 'must be an environment variable name')
    .default('T1_OPENAI_API_KEY'),
  /** The prompt; `{problem}` is replaced by the problem's text. Default: tasks/teacher-prompt.ts. */
  template: z.string().includes('{problem}', { message: 'must contain {problem}' }).default(TEACHER_PROMPT),
  /** Requests per problem, one sample each, until a trace verifies (rejection sampling). */
  tries: z.number().int().min(1).max(64).default(4),
  temperature: z.number().min(0).max(2).default(0.7),
  maxTokens: z.number().int().min(1).default(1024),
  /** Requests in flight. */
  concurrency: z.number().int().min(1).max(256).default(4),
  /** Per request attempt. */
  timeoutMs: z.number().int().min(1).default(60_000),
  /** Attempts per request (429, 5xx, timeouts and network errors are retried with backoff). */
  maxAttempts: z.number().int().min(1).default(5),
  maxChars,
});
export type EndpointTeacher = z.infer<typeof EndpointTeacherSchema>;

/** Who writes the SFT traces of problems without a worked solution. */
export const TeacherConfigSchema = z.discriminatedUnion('kind', [ProgrammaticTeacherSchema, EndpointTeacherSchema]);
export type TeacherConfig = z.infer<typeof TeacherConfigSchema>;
