/**
 * Expression trees over + - * / with non-negative integer literals: the printer writes the fewest
 * parentheses that keep the tree's value; the parser reads answers and prompts tolerantly in
 * formatting (spaces, × x · ÷ − –) but strictly in structure (no unary signs, no leading zeros).
 */
export type Op = '+' | '-' | '*' | '/';

export type Expr = { kind: 'num'; value: number } | { kind: 'op'; op: Op; left: Expr; right: Expr };

export const num = (value: number): Expr => ({ kind: 'num', value });
export const bin = (op: Op, left: Expr, right: Expr): Expr => ({ kind: 'op', op, left, right });

const PRECEDENCE: Record<Op, number> = { '+': 1, '-': 1, '*': 2, '/': 2 };

function precedence(e: Expr): number {
  return e.kind === 'num' ? 3 : PRECEDENCE[e.op];
}

export function show(e: Expr): string {
  if (e.kind === 'num') return String(e.value);
  const p = PRECEDENCE[e.op];
  const left = precedence(e.left) < p ? `(${show(e.left)})` : show(e.left);
  // a-(b+c), a/(b*c) need parentheses; a+(b-c) and a*(b/c) do not (exact arithmetic).
  const rp = precedence(e.right);
  const paren = rp < p || (rp === p && (e.op === '-' || e.op === '/'));
  const right = paren ? `(${show(e.right)})` : show(e.right);
  return `${left}${e.op}${right}`;
}

export function leaves(e: Expr, out: number[] = []): number[] {
  if (e.kind === 'num') out.push(e.value);
  else {
    leaves(e.left, out);
    leaves(e.right, out);
  }
  return out;
}

export function countOps(e: Expr): number {
  return e.kind === 'num' ? 0 : 1 + countOps(e.left) + countOps(e.right);
}

const ALIASES: Record<string, string> = { '×': '*', x: '*', X: '*', '·': '*', '÷': '/', '−': '-', '–': '-' };
const MAX_DIGITS = 15; // stays an exact double
const MAX_DEPTH = 64;

type Token = { num: number } | { sym: string };

function tokenize(text: string): Token[] | null {
  const out: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = ALIASES[text[i]] ?? text[i];
    if (c === ' ' || c === '\t') i++;
    else if (c >= '0' && c <= '9') {
      let j = i;
      while (j < text.length && text[j] >= '0' && text[j] <= '9') j++;
      const digits = text.slice(i, j);
      if (digits.length > MAX_DIGITS || (digits.length > 1 && digits[0] === '0')) return null;
      out.push({ num: Number(digits) });
      i = j;
    } else if ('+-*/()'.includes(c)) {
      out.push({ sym: c });
      i++;
    } else return null;
  }
  return out;
}

/** The expression in `text`, or null when it is not exactly one well-formed expression. */
export function parseExpr(text: string): Expr | null {
  const tokens = tokenize(text);
  if (!tokens || tokens.length === 0) return null;
  let pos = 0;
  const sym = (): string | undefined => {
    const t = tokens[pos];
    return t && 'sym' in t ? t.sym : undefined;
  };
  const factor = (depth: number): Expr | null => {
    if (depth > MAX_DEPTH) return null;
    const t = tokens[pos];
    if (!t) return null;
    if ('num' in t) {
      pos++;
      return num(t.num);
    }
    if (t.sym !== '(') return null;
    pos++;
    const inner = sum(depth + 1);
    if (!inner || sym() !== ')') return null;
    pos++;
    return inner;
  };
  const chain =
    (ops: string, next: (d: number) => Expr | null) =>
    (depth: number): Expr | null => {
      let left = next(depth);
      while (left) {
        const s = sym();
        if (s === undefined || !ops.includes(s)) break;
        pos++;
        const right = next(depth);
        left = right && bin(s as Op, left, right);
      }
      return left;
    };
  const product = chain('*/', factor);
  const sum = chain('+-', product);
  const e = sum(0);
  return e && pos === tokens.length ? e : null;
}
