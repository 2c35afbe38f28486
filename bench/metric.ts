/** One benchmark result line: `npm run bench` prints one JSON object per metric. */
export interface Metric {
  metric: string;
  value: number;
  unit: string;
  [context: string]: unknown;
}

export interface Bench {
  /** Metric names this bench emits; `--only` selects benches by these. */
  metrics: string[];
  run(emit: (m: Metric) => void): Promise<void>;
}
