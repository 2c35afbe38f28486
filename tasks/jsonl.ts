/**
 * The user's own problems: one JSON object per line with the problem text (`problem`, `question`
 * or `prompt`, as MATH, GSM8K and our benchmarks name it), its `answer`, and optionally an `id`, a
 * worked `solution` and a `difficulty`. Answers are checked by the math answer checker, the same
 * one for RL rewards and evaluation. Splits and pools follow from each problem's content hash,
 * as for the generated tasks.
 */
import { z } from 'zod';
import { answersMatch, extractAnswer, normaliseAnswer } from './math-answer';
import { isBaseChar } from '../model/tokenizer';
import { UserError } from '../util/errors';
import { DIFFICULTY, problemId, type Problem, type Trace, type Verifier } from './types';

export class TaskFileError extends UserError {
  override name = 'TaskFileError';
}

const text = z.string().min(1, 'must not be empty');
const { min: DMIN, max: DMAX } = DIFFICULTY.jsonl;

/** One line of a problem file; the benchmark loader reads the same fields. */
export const ProblemLine = z
  .object({
    problem: text.optional(),
    question: text.optional(),
    prompt: text.optional(),
    answer: z
      .union([text, z.number()], { error: (i) => (i.input === undefined ? 'required' : 'must be a string or a number') })
      .transform(String),
    id: z.union([z.string(), z.number()]).transform(String).optional(),
    solution: text.optional(),
    difficulty: z.number().int().min(DMIN).max(DMAX).optional(),
  })
  .refine((l) => (l.problem ?? l.question ?? l.prompt) !== undefined, {
    message: 'needs one of "problem", "question" or "prompt"',
    path: ['problem'],
  });
export type ProblemLine = z.infer<typeof ProblemLine>;

export const problemText = (l: ProblemLine): string => (l.problem ?? l.question ?? l.prompt)!;

/** Errors shown in one message; the count of the rest follows. */
const SHOWN_ERRORS = 20;

/**
 * Parses every line, collecting every bad one (line number and field) before failing, so a user
 * fixes a file in one pass. Blank lines are skipped. `check` adds errors of its own per line.
 * No message quotes a line's content: a worker's errors are recorded in the campaign's history.
 */
export function parseProblemLines(
  source: string,
  body: string,
  check: (line: ProblemLine, lineNo: number) => string[] = () => [],
): { line: ProblemLine; lineNo: number }[] {
  const rows: { line: ProblemLine; lineNo: number }[] = [];
  const errors: string[] = [];
  body.split('\n').forEach((raw, i) => {
    const lineNo = i + 1;
    if (raw.trim() === '') return;
    let json: unknown;
    try {
      json = JSON.parse(raw);
    } catch (e) {
      // The parser's message quotes the line; only where it failed is shown (a campaign's errors land in its history).
      const at = /at position (\d+)/.exec((e as Error).message);
      errors.push(`${source}:${lineNo}: not JSON${at ? ` (at character ${Number(at[1]) + 1})` : ''}`);
      return;
    }
    const r = ProblemLine.safeParse(json);
    if (!r.success) {
      errors.push(`${source}:${lineNo}: ${r.error.issues.map((x) => `${x.path.join('.') || '(root)'}: ${x.message}`).join('; ')}`);
      return;
    }
    const own = check(r.data, lineNo);
    if (own.length) errors.push(...own.map((m) => `${source}:${lineNo}: ${m}`));
    else rows.push({ line: r.data, lineNo });
  });
  if (errors.length) {
    const more = errors.length > SHOWN_ERRORS ? `\n… and ${errors.length - SHOWN_ERRORS} more` : '';
    throw new TaskFileError(`${source}: ${errors.length} bad line(s)\n${errors.slice(0, SHOWN_ERRORS).join('\n')}${more}`);
  }
  if (!rows.length) throw new TaskFileError(`${source}: no problems`);
  return rows;
}

/**
 * Typographic forms folded to the ASCII the built-in tasks use, after NFKC has folded compatibility
 * forms (full-width digits, ligatures, superscripts): fewer tokens, and answers compare as the
 * checker expects. Other characters stay and become the campaign's extra tokens.
 */
const ASCII_FORMS: Record<string, string> = {
  '\u2212': '-', // minus sign
  '\u2013': '-',
  '\u2014': '-',
  '\u00d7': '*',
  '\u22c5': '*',
  '\u00b7': '*',
  '\u00f7': '/',
  '\u2018': "'",
  '\u2019': "'",
  '\u201c': '"',
  '\u201d': '"',
  '\u2264': '<=',
  '\u2265': '>=',
  '\u2260': '!=',
  '\u00a0': ' ',
  '\t': ' ',
  '\r': '',
};

/** The text as the tokenizer sees it, or the first character no tokenizer takes (a control or unassigned character). */
export function normaliseText(s: string): { text: string } | { bad: string } {
  let out = '';
  for (const c of s.normalize('NFKC')) {
    const mapped = ASCII_FORMS[c] ?? c;
    if (mapped !== '\n' && /[\p{Cc}\p{Cn}\p{Cs}]/u.test(mapped))
      return { bad: `${JSON.stringify(mapped)} (U+${mapped.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')})` };
    out += mapped;
  }
  return { text: out };
}

/** Characters of `texts` beyond the base alphabet, sorted by code point: the extra tokens they need. */
export function extraCharsOf(texts: Iterable<string>): string {
  const extra = new Set<string>();
  for (const t of texts) for (const c of t) if (!isBaseChar(c)) extra.add(c);
  return [...extra].sort((a, b) => a.codePointAt(0)! - b.codePointAt(0)!).join('');
}

export interface JsonlData {
  answer: string;
  solution?: string;
  /** Line in the source file, for messages. */
  line: number;
}

export interface JsonlDataset {
  /** sha256 of the file's bytes: pinned in the campaign config, so every worker trains on the same file. */
  sha256: string;
  problems: Problem<JsonlData>[];
  /** Characters beyond printable ASCII in the problems, answers and solutions: the model's extra tokens. */
  extraChars: string;
}

/** Problems of a JSONL file; refuses the whole file when any line is bad, listing each. */
export function parseJsonlTask(source: string, body: string, sha256: string): JsonlDataset {
  const seen = new Map<string, number>();
  const problems: Problem<JsonlData>[] = [];
  const fields = (l: ProblemLine) => [
    ['problem', problemText(l)],
    ['answer', l.answer],
    ...(l.solution === undefined ? [] : [['solution', l.solution]]),
  ];
  parseProblemLines(source, body, (l, lineNo) => {
    const errors: string[] = [];
    const t: Record<string, string> = {};
    for (const [field, value] of fields(l)) {
      const r = normaliseText(value);
      if ('bad' in r) errors.push(`${field}: character ${r.bad} is a control or unassigned character`);
      else t[field] = field === 'problem' ? r.text.trim() : r.text;
    }
    if (errors.length) return errors;
    if (t.answer.includes('\n') || !normaliseAnswer(t.answer).text) return ['answer: must be one non-empty line'];
    const id = problemId('jsonl', t.problem);
    const first = seen.get(id);
    if (first !== undefined) return [`problem: the same problem as line ${first}`];
    seen.set(id, lineNo);
    problems.push({
      task: 'jsonl',
      id,
      prompt: t.problem,
      difficulty: l.difficulty ?? DMIN,
      data: { answer: t.answer.trim(), line: lineNo, ...(t.solution !== undefined && { solution: t.solution.trim() }) },
    });
    return [];
  });
  return {
    sha256,
    problems,
    extraChars: extraCharsOf(problems.flatMap((p) => [p.prompt, p.data.answer, p.data.solution ?? ''])),
  };
}

/**
 * The problems of the file a stream draws from: `file`, the loaded file its caller passes along
 * (config/task-file's loadTaskData), which must be the one pinned as `sha256`.
 */
export function fileProblems(file: JsonlDataset | undefined, sha256: string | undefined): readonly Problem<JsonlData>[] {
  if (!file) throw new Error(`jsonl dataset ${sha256 ?? '(unpinned)'}: its problems were not passed along (loadTaskData gives them)`);
  if (file.sha256 !== sha256) throw new Error(`jsonl dataset ${sha256 ?? '(unpinned)'}: the file passed along is ${file.sha256}`);
  return file.problems;
}

export const jsonlVerifier: Verifier<JsonlData, string> = {
  name: 'jsonl',
  parseAnswer: (answerText) => (normaliseAnswer(answerText).text ? answerText.trim() : null),
  verify: (problem, answerText) => answersMatch(answerText, problem.data.answer),
  // Everything answersMatch reads, so equal keys match the same references: `0.5`, `1/2` and
  // `\frac12` vote together; `50` and `50\%`, or `x = 2` and `y = 2`, do not.
  voteKey: (answerText) => {
    const { number, text, unit, variable } = normaliseAnswer(answerText);
    return JSON.stringify([number ? `${number.n}/${number.d}` : text, unit, variable]);
  },
};

/**
 * A trace from the line's worked solution: the solution as reasoning, the reference answer as the
 * answer line. Refused (null) when the solution states a final answer that is not the reference.
 */
export function solutionTrace(problem: Problem<JsonlData>): Trace | null {
  const { solution, answer } = problem.data;
  if (solution === undefined) return null;
  const stated = extractAnswer(solution);
  if (stated !== null && !answersMatch(stated, answer)) return null;
  const reasoning = `${solution}\n`;
  return { reasoning, answer, verification: '', failedAttempts: 0, steps: reasoning.split('\n').filter((l) => l.trim()).length };
}
