import type { Expr } from './expr';

/** Exact rational n/d in lowest terms with d > 0 (BigInt, so no answer can overflow into a false match). */
export interface Rational {
  n: bigint;
  d: bigint;
}

function gcd(a: bigint, b: bigint): bigint {
  if (a < 0n) a = -a;
  while (b !== 0n) [a, b] = [b, a % b];
  return a;
}

function make(n: bigint, d: bigint): Rational {
  if (d < 0n) [n, d] = [-n, -d];
  const g = gcd(n, d) || 1n;
  return { n: n / g, d: d / g };
}

/** The exact value, or null when some division divides by zero. */
export function evalRational(e: Expr): Rational | null {
  if (e.kind === 'num') return { n: BigInt(e.value), d: 1n };
  const a = evalRational(e.left);
  const b = a && evalRational(e.right);
  if (!a || !b) return null;
  switch (e.op) {
    case '+':
      return make(a.n * b.d + b.n * a.d, a.d * b.d);
    case '-':
      return make(a.n * b.d - b.n * a.d, a.d * b.d);
    case '*':
      return make(a.n * b.n, a.d * b.d);
    case '/':
      return b.n === 0n ? null : make(a.n * b.d, a.d * b.n);
  }
}
