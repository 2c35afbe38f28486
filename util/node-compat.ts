/**
 * tfjs-node 4.22 (the latest release) calls `util.isNullOrUndefined`, which Node 23 removed, and
 * `util.isArray`, deprecated with a warning (tensorflow/tfjs#8609: fixed upstream, unreleased).
 * Defined here before it loads, tfjs-node runs on Node 20, 22 and 24 without a warning.
 */
import util from 'node:util';

export function shimUtilForTfjsNode(): void {
  Object.assign(util, { isNullOrUndefined: (v: unknown) => v === null || v === undefined, isArray: Array.isArray });
}
