/** `npm run bench [-- --only NAME,NAME | --profile]`: one JSON object per metric on stdout. */
import { parseArgs } from 'node:util';
import type { Bench, Metric } from './metric';

async function benches(): Promise<Bench[]> {
  const mods = await Promise.all([
    import('./checkpoint'),
    import('./model'),
    import('./rl'),
    import('./rollout'),
    import('./campaign'),
    import('./pretrained'),
    import('./cli'),
  ]);
  return mods.flatMap((m) =>
    Object.values(m).filter((b): b is Bench => typeof b === 'object' && b !== null && 'metrics' in b && 'run' in b),
  );
}

export async function runBenches(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { only: { type: 'string' }, profile: { type: 'boolean' } } });
  if (values.profile) {
    // Time per op kind for one SFT step and one decode step, instead of the benchmarks.
    const { runProfile } = await import('./profile');
    await runProfile((m) => console.log(JSON.stringify(m)));
    return 0;
  }
  const only = values.only
    ?.split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const all = await benches();
  const known = new Set(all.flatMap((b) => b.metrics));
  const unknown = only?.filter((n) => !known.has(n)) ?? [];
  if (unknown.length) {
    console.error(`unknown metric(s): ${unknown.join(', ')}; known: ${[...known].sort().join(', ')}`);
    return 2;
  }
  const chosen = only ? all.filter((b) => b.metrics.some((m) => only.includes(m))) : all;
  const emit = (m: Metric) => {
    if (!only || only.includes(m.metric) || only.some((o) => m.metric.startsWith(`${o}_`))) console.log(JSON.stringify(m));
  };
  for (const b of chosen) await b.run(emit);
  return 0;
}
