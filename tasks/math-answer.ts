/**
 * Final-answer extraction and exact comparison for math benchmarks. Built to never accept a wrong
 * answer: numbers compare as exact rationals (BigInt), everything else as normalised strings, and
 * anything ambiguous (a truncated \boxed{, a mixed number, a European decimal comma) is rejected.
 *
 * Units and percent, as documented behaviour:
 * - a trailing `\text{cm}` (also \mbox, \mathrm, \textrm) after a number, or `^\circ`, is a unit:
 *   a side without one matches a side with one, but two different units never match;
 * - `50\%` is the number 50 with unit %, never 0.5. A bare 50 matches a reference of 50%, but an
 *   answer of 50% does not match a reference of 50.
 */

/** The final answer in a model's text: the last \boxed{...}, else a GSM8K `####` line, else an answer cue line, else our model's `<ANS>` line. */
export function extractAnswer(text: string): string | null {
  const boxed = lastBoxed(text);
  if (boxed !== undefined) return boxed;
  // GSM8K's worked solutions end with `#### 72`.
  const hashes = text.lastIndexOf('####');
  if (hashes >= 0) return nonEmpty(text.slice(hashes + 4).split('\n')[0]);
  const cues = [...text.matchAll(/\banswer(?:\s+is\s*:?|\**\s*:)/gi)];
  if (cues.length) {
    const cue = cues[cues.length - 1];
    // The rest of the cue's line, up to a sentence end ("... is $5$. I hope it is correct.").
    return nonEmpty(
      stripBold(
        text
          .slice(cue.index + cue[0].length)
          .trimStart()
          .split('\n')[0]
          .split(/\.\s/)[0],
      ),
    );
  }
  const ans = text.lastIndexOf('<ANS>');
  if (ans >= 0) return nonEmpty(text.slice(ans + '<ANS>'.length).split(/\n|<EOS>/)[0]);
  return null;
}

/** Content of the last \boxed{...} / \fbox{...}; null when that box is empty or never closed (truncated). */
function lastBoxed(text: string): string | null | undefined {
  const at = Math.max(text.lastIndexOf('\\boxed'), text.lastIndexOf('\\fbox'));
  if (at < 0) return undefined;
  const open = text.slice(at).search(/\{/);
  if (open < 0 || text.slice(at, at + open).replace(/\\(?:boxed|fbox)\s*/, '') !== '') return null;
  const inner = braced(text, at + open);
  return inner === null ? null : nonEmpty(inner);
}

/** The text inside the balanced braces opening at `start`, or null if they never close. */
function braced(s: string, start: number): string | null {
  let depth = 0;
  for (let i = start; i < s.length; i++) {
    if (s[i] === '{') depth++;
    else if (s[i] === '}' && --depth === 0) return s.slice(start + 1, i);
  }
  return null;
}

function stripBold(s: string): string {
  return s.replace(/^\*+\s*/, '').replace(/\s*\*+$/, '');
}

function nonEmpty(s: string): string | null {
  return s.trim() === '' ? null : s.trim();
}

/** An exact rational n/d with d > 0. */
interface Rational {
  n: bigint;
  d: bigint;
}

export interface Normalised {
  /** Exact value when the answer is a plain number, fraction or decimal. */
  number: Rational | null;
  /** Canonical text (compared when either side is not a number). */
  text: string;
  unit: string | null;
  /** Single-letter left-hand side of `x = ...`, removed from the value. */
  variable: string | null;
}

export function normaliseAnswer(raw: string): Normalised {
  let s = raw
    .replace(/\u2212/g, '-')
    .replace(/\\\$/g, '')
    .replace(/\$/g, '')
    .replace(/\\(?:left|right)\.|\\displaystyle/g, '')
    .replace(/\\(?:left|right)(?![a-zA-Z])/g, '')
    .replace(/\\[!,;:]/g, '')
    .replace(/\\ |~|\\q?quad(?![a-zA-Z])/g, ' ')
    .trim()
    .replace(/\.$/, '')
    .trim();
  let variable: string | null = null;
  const lhs = s.match(/^([a-zA-Z])\s*=(?!=)\s*/);
  if (lhs) {
    variable = lhs[1];
    s = s.slice(lhs[0].length);
  }
  const [value, unit] = splitUnit(s);
  const text = canonical(value);
  return { number: parseRational(text), text, unit, variable };
}

/** Splits a trailing unit off a numeric value; non-numeric values keep their text. */
function splitUnit(s: string): [string, string | null] {
  const m =
    s.match(/^(.+?)\s*\\(?:text|mbox|mathrm|textrm)\{([^{}]*)\}$/) ??
    s.match(/^(.+?)\s*(\\?%)$/) ??
    s.match(/^(.+?)\s*(\^\s*\\circ|\^\s*\{\\circ\}|°)$/);
  if (!m || parseRational(canonical(m[1])) === null) return [s, null];
  const unit = m[2].endsWith('%') ? '%' : /circ|°/.test(m[2]) ? '°' : m[2].replace(/\s+/g, '');
  return [m[1], unit];
}

function canonical(s: string): string {
  s = s.replace(/\\(?:text|mbox|mathrm|textrm|textbf)\{([^{}]*)\}/g, '$1').trim();
  // Thousands separators only in a well-formed grouping: "1, 234" (a list) and "1,5" stay text.
  if (/^[+-]?\d{1,3}((,|\{,\})\d{3})+(\.\d+)?$/.test(s) || /^[+-]?\d{1,3}( \d{3})+(\.\d+)?$/.test(s)) s = s.replace(/\{,\}|,| /g, '');
  // Whitespace goes, except between two digits ("2 3" must not become 23).
  s = s.replace(/\s+/g, (m, at: number) => (/\d/.test(s[at - 1] ?? '') && /\d/.test(s[at + m.length] ?? '') ? ' ' : ''));
  s = s.replace(/\\[dt]frac(?![a-zA-Z])/g, '\\frac');
  s = braceArgs(braceArgs(s, '\\frac', 2), '\\sqrt', 1);
  return s.replace(/\^\{([^{}])\}/g, '^$1').replace(/^\+(?=[\d.\\])/, '');
}

/** `\frac12` -> `\frac{1}{2}`, `\sqrt3` -> `\sqrt{3}`: single-character arguments get braces. */
function braceArgs(s: string, cmd: string, count: number): string {
  let out = '';
  let i = 0;
  for (let at = s.indexOf(cmd); at >= 0; at = s.indexOf(cmd, i)) {
    out += s.slice(i, at + cmd.length);
    i = at + cmd.length;
    if (/[a-zA-Z]/.test(s[i] ?? '')) continue; // a longer command name
    for (let k = 0; k < count && i < s.length; k++) {
      if (s[i] === '{') {
        const inner = braced(s, i);
        if (inner === null) break;
        out += `{${inner}}`;
        i += inner.length + 2;
      } else if (s[i] !== '[' && s[i] !== '\\') {
        out += `{${s[i]}}`;
        i++;
      } else break;
    }
  }
  return out + s.slice(i);
}

/** A decimal, `a/b` or `\frac{a}{b}` (a, b decimals) as an exact rational; null for anything else. */
export function parseRational(s: string): Rational | null {
  const frac = s.match(/^([+-]?)\\frac\{([^{}]+)\}\{([^{}]+)\}$/) ?? s.match(/^()([^/]+)\/([^/]+)$/);
  if (!frac) return decimal(s);
  const a = decimal(frac[2]);
  const b = decimal(frac[3]);
  if (!a || !b || b.n === 0n) return null;
  const sign = frac[1] === '-' ? -1n : 1n;
  return reduce(sign * a.n * b.d, a.d * b.n);
}

function decimal(s: string): Rational | null {
  const m = s.match(/^([+-]?)(\d*)(?:\.(\d*))?$/);
  if (!m || (m[2] + (m[3] ?? '')).length === 0) return null;
  const frac = m[3] ?? '';
  const n = BigInt(m[2] + frac || '0') * (m[1] === '-' ? -1n : 1n);
  return reduce(n, 10n ** BigInt(frac.length));
}

function reduce(n: bigint, d: bigint): Rational {
  if (d < 0n) [n, d] = [-n, -d];
  const g = gcd(n < 0n ? -n : n, d);
  return g > 1n ? { n: n / g, d: d / g } : { n, d };
}

function gcd(a: bigint, b: bigint): bigint {
  while (b) [a, b] = [b, a % b];
  return a;
}

/** True only when the candidate answer certainly equals the reference. */
export function answersMatch(candidate: string, reference: string): boolean {
  const c = normaliseAnswer(candidate);
  const r = normaliseAnswer(reference);
  if (c.text === '' || r.text === '') return false;
  if (c.variable && r.variable && c.variable !== r.variable) return false;
  if (c.unit && r.unit ? c.unit !== r.unit : c.unit === '%') return false;
  if (c.number && r.number) return c.number.n * r.number.d === r.number.n * c.number.d;
  return c.number === null && r.number === null && c.text === r.text;
}

/** Scores model text against a reference: the extracted answer and whether it is right. */
export function checkAnswer(modelText: string, reference: string): { extracted: string | null; correct: boolean } {
  const extracted = extractAnswer(modelText);
  return { extracted, correct: extracted !== null && answersMatch(extracted, reference) };
}
