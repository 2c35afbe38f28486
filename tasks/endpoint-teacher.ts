/**
 * The LLM teacher (T1 section 1 with an LLM, as the paper did): each problem is sent to an
 * OpenAI-compatible endpoint up to `tries` times, one sample per request, until a trace parses,
 * fits and its final answer verifies (rejection sampling). Every answer is cached by (teacher
 * config, problem, try) before it is judged, so a retried or repeated synthesis replays the same
 * answers, keeps the same traces and sends no request twice.
 */
import { teacherGrantError, USER_ACCESS, type Access } from '../util/grants';
import type { EndpointTeacher } from './config';
import { CompletionClient, EndpointError } from './openai';
import { hashOf } from '../util/hash';
import { ConfigError, UserError } from '../util/errors';
import { isBaseChar } from '../model/tokenizer';
import { normaliseText } from './jsonl';
import { getVerifier } from './registry';
import { ANSWER_CUE, countSteps, splitAnswer, traceChars } from './teacher';
import type { Problem, Trace } from './types';

/** The endpoint cannot serve as a teacher as configured (refused key, not an answer): retrying will not help. */
export class TeacherEndpointError extends UserError {
  override name = 'TeacherEndpointError';
}

/** Endpoint teacher answers in the checkpoint bucket, by (teacher config, problem, try): `teacher-cache/<teacher hash>/<problem id>/<try>.json`. */
export const TEACHER_CACHE_PREFIX = 'teacher-cache';

/** Where answers are kept: the checkpoint bucket's teacher-cache (write-once JSON objects). */
export interface AnswerCache {
  getJson<T>(key: string): Promise<T | undefined>;
  putJsonOnce(key: string, value: unknown): Promise<void>;
}

export interface CachedAnswer {
  text: string;
  finishReason: string | null;
}

export const REJECTIONS = ['unparseable', 'alphabet', 'wrong', 'tooLong'] as const;
export type Rejection = (typeof REJECTIONS)[number];

export interface TeacherStats {
  /** Problems sent to the teacher. */
  problems: number;
  /** Problems that got a verified trace. */
  accepted: number;
  /** accepted / problems. */
  acceptance: number;
  /** Answers judged, cached or new. */
  answers: number;
  /** Requests sent to the endpoint (answers not in the cache). */
  requests: number;
  cacheHits: number;
  rejected: Record<Rejection, number>;
}

/** Names the teacher's answers in the cache: what shapes an answer (not concurrency, timeouts or tries). */
export function teacherHash(cfg: EndpointTeacher): string {
  const { url, model, chat, template, temperature, maxTokens } = cfg;
  return hashOf({ url, model, chat, template, temperature, maxTokens });
}

const ANSWER_LINE = /^\s*(?:final\s+)?answer\s*:\s*(.*)$/i;

/**
 * A trace in our format from a teacher's text: reasoning lines, then `Answer: ...` (or our own
 * models' answer cue), then at most one check line. Null when there is no answer line.
 */
export function parseTeacherText(text: string): Pick<Trace, 'reasoning' | 'answer' | 'verification'> | null {
  let before: string[];
  let answer: string;
  let after: string[];
  const cue = text.lastIndexOf(ANSWER_CUE);
  if (cue >= 0) {
    const rest = splitAnswer(text.slice(cue + ANSWER_CUE.length).split('<EOS>')[0]);
    before = text.slice(0, cue).split('\n');
    answer = rest.answer;
    after = rest.verification.split('\n');
  } else {
    const lines = text.split('\n');
    const at = lines.findLastIndex((l) => ANSWER_LINE.test(l));
    if (at < 0) return null;
    before = lines.slice(0, at);
    answer = ANSWER_LINE.exec(lines[at])![1].trim();
    after = lines.slice(at + 1);
  }
  if (!answer) return null;
  const reasoning = before.map((l) => l.trim()).filter(Boolean);
  const check = after.map((l) => l.trim()).find(Boolean);
  return { reasoning: reasoning.length ? `${reasoning.join('\n')}\n` : '', answer, verification: check ? `\n${check}` : '' };
}

/** The teacher's answer as a trace for this problem, or why it is rejected; `extraChars`: the student's characters beyond ASCII. */
export function judgeAnswer(problem: Problem, text: string, maxChars: number, extraChars = ''): Trace | Rejection {
  const parsed = parseTeacherText(text);
  if (!parsed) return 'unparseable';
  const parts = [parsed.reasoning, parsed.answer, parsed.verification].map(normaliseText);
  const known = (t: string) => [...t].every((c) => isBaseChar(c) || extraChars.includes(c));
  if (parts.some((a) => 'bad' in a || !known(a.text))) return 'alphabet';
  const [reasoning, answer, verification] = parts.map((a) => (a as { text: string }).text);
  if (!getVerifier(problem.task).verify(problem, answer)) return 'wrong';
  const steps = countSteps(reasoning);
  const trace = { reasoning, answer, verification, failedAttempts: steps.reflections, steps: steps.total };
  return traceChars(problem, trace) > maxChars ? 'tooLong' : trace;
}

/** Deterministic per (problem, try), for servers that honour `seed`. */
const requestSeed = (problemId: string, attempt: number) => (parseInt(problemId.slice(0, 8), 16) + attempt) >>> 0;

export interface EndpointWriterOptions {
  /**
   * Who asks: a worker (its grants must cover `cfg.apiKeyEnv` and `cfg.url`'s host, checked before
   * any request, even with `client` given) or the user's own CLI process (no grant applies).
   */
  access: Access;
  /** Default: a client for `cfg.url` with the API key from the variable `cfg.apiKeyEnv` (this process's environment). */
  client?: CompletionClient;
  cache: AnswerCache;
  /** The student's characters beyond ASCII (its model config's extraChars): a trace with any other is rejected. */
  extraChars?: string;
  /** Called after each problem is settled. */
  onProgress?: (stats: TeacherStats) => void;
}

/**
 * Writes traces for batches of problems (in order; null where no try verified), counting what it did.
 * Throws a ConfigError naming the field at once when a worker's grants do not cover the teacher.
 */
export function endpointWriter(cfg: EndpointTeacher, o: EndpointWriterOptions) {
  if (o.access !== USER_ACCESS) {
    const refused = teacherGrantError(o.access.grants, cfg);
    if (refused) throw new ConfigError(refused);
  }
  const prefix = `${TEACHER_CACHE_PREFIX}/${teacherHash(cfg)}`;
  const client =
    o.client ??
    new CompletionClient({
      endpoint: cfg.url,
      chat: cfg.chat,
      apiKey: process.env[cfg.apiKeyEnv] ?? '',
      timeoutMs: cfg.timeoutMs,
      maxAttempts: cfg.maxAttempts,
      // A granted host must not hand the request (and its key) on to one that is not.
      followRedirects: false,
    });
  const stats: TeacherStats = {
    problems: 0,
    accepted: 0,
    acceptance: 0,
    answers: 0,
    requests: 0,
    cacheHits: 0,
    rejected: Object.fromEntries(REJECTIONS.map((r) => [r, 0])) as Record<Rejection, number>,
  };

  async function answer(problem: Problem, attempt: number): Promise<CachedAnswer> {
    const key = `${prefix}/${problem.id}/${attempt}.json`;
    const hit = await o.cache.getJson<CachedAnswer>(key);
    if (hit) {
      stats.cacheHits++;
      return hit;
    }
    stats.requests++;
    let choice;
    try {
      [choice] = await client.complete({
        model: cfg.model,
        prompt: cfg.template.replaceAll('{problem}', problem.prompt),
        maxTokens: cfg.maxTokens,
        temperature: cfg.temperature,
        n: 1,
        seed: requestSeed(problem.id, attempt),
      });
    } catch (e) {
      if (!(e instanceof EndpointError && e.definitive)) throw e;
      const hint =
        e.status === 401 || e.status === 403
          ? ` (the endpoint refused the API key in $${cfg.apiKeyEnv})`
          : e.status === 404
            ? ` (check data.teacher.url and data.teacher.model)`
            : '';
      throw new TeacherEndpointError(`data.teacher: ${e.message}${hint}`);
    }
    const value: CachedAnswer = { text: choice.text, finishReason: choice.finishReason };
    await o.cache.putJsonOnce(key, value);
    return value;
  }

  async function traceFor(problem: Problem): Promise<Trace | null> {
    for (let t = 0; t < cfg.tries; t++) {
      const a = await answer(problem, t);
      stats.answers++;
      const judged = judgeAnswer(problem, a.text, cfg.maxChars, o.extraChars);
      if (typeof judged !== 'string') return judged;
      stats.rejected[judged]++;
    }
    return null;
  }

  async function write(problems: Problem[]): Promise<(Trace | null)[]> {
    const out = new Array<Trace | null>(problems.length).fill(null);
    let next = 0;
    let failed = false;
    const lane = async () => {
      while (!failed && next < problems.length) {
        const i = next++;
        try {
          out[i] = await traceFor(problems[i]);
        } catch (e) {
          failed = true; // hand out no more problems; requests in flight finish and are cached
          throw e;
        }
        stats.problems++;
        if (out[i]) stats.accepted++;
        stats.acceptance = stats.accepted / stats.problems;
        o.onProgress?.(stats);
      }
    };
    await Promise.all(Array.from({ length: Math.min(cfg.concurrency, problems.length) }, lane));
    return out;
  }

  return { write, stats };
}
