/**
 * A reproduction's results in S3, each object written once by the reproduce workflow and never
 * overwritten; the report is built from these alone, so `t1 reproduce --report-only` writes the
 * same bytes as the run did. Pure (keys and types, and a reader over any getJson), so workflow code
 * may import it.
 *
 *   reproductions/<id>/plan.json               the plan as started, and the machine that started it
 *   reproductions/<id>/runs/s<seed>-<arm>.json one finished campaign: its result and wall time
 */
import { UserError } from '../util/errors';
import type { ReproduceRun } from '../contracts/reproduce';
import type { PlannedCampaign, ReproductionPlan } from './plan';

export const REPRODUCTIONS_PREFIX = 'reproductions';

export const planKey = (id: string) => `${REPRODUCTIONS_PREFIX}/${id}/plan.json`;
export const runKey = (id: string, c: Pick<PlannedCampaign, 'seed' | 'arm'>) =>
  `${REPRODUCTIONS_PREFIX}/${id}/runs/s${c.seed}-${c.arm}.json`;

/** Where the campaigns ran: the CLI's machine, whose in-process workers train. */
export interface Host {
  machine: string;
  backend: string;
}

export interface PlanRecord {
  id: string;
  plan: ReproductionPlan;
  /** Absent when the reproduction was started without one (a test's, or another client's). */
  host?: Host;
}

export interface StoredReproduction {
  record: PlanRecord;
  /** The finished campaigns, in plan order (per seed its base, then its ablations). */
  runs: ReproduceRun[];
  /** Planned campaigns without a stored result. */
  missing: PlannedCampaign[];
}

export class ReproductionNotFoundError extends UserError {
  override name = 'ReproductionNotFoundError';
}

/** Every planned campaign in the order the workflow runs them. */
function plannedOrder(plan: Pick<ReproductionPlan, 'base' | 'ablations'>): PlannedCampaign[] {
  return plan.base.flatMap((b) => [b, ...plan.ablations.filter((a) => a.seed === b.seed)]);
}

/** Reads reproduction `id` back from the store. */
export async function loadReproduction(
  store: { getJson<T>(key: string): Promise<T | undefined> },
  id: string,
): Promise<StoredReproduction> {
  const record = await store.getJson<PlanRecord>(planKey(id));
  if (!record) throw new ReproductionNotFoundError(`no stored reproduction "${id}" (${planKey(id)} is absent)`);
  const planned = plannedOrder(record.plan);
  const found = await Promise.all(planned.map((c) => store.getJson<ReproduceRun>(runKey(id, c))));
  return {
    record,
    runs: found.filter((r): r is ReproduceRun => r !== undefined),
    missing: planned.filter((_, i) => found[i] === undefined),
  };
}
