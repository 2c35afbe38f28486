import * as tf from '@tensorflow/tfjs';

/** Named weight values: what init, checkpoints, pretrained files and clones exchange. */
export type NamedArrays = Record<string, Float32Array>;

/** What another model must offer to be copied from: its trainable variables by name. */
export interface Trainable {
  readonly variables: tf.Variable[];
  readonly names: string[];
}

/** A model's trainable variables by name, in a fixed order: what both model families share. */
export class NamedVariables {
  /** Trainable variables, in the order of the shapes given (names in `names`). */
  readonly variables: tf.Variable[];
  readonly names: string[];
  protected readonly p: Record<string, tf.Variable> = {};

  /** `valueOf` gives each weight's values (of the shape's size) by name. */
  constructor(shapes: [string, number[]][], valueOf: (name: string, size: number) => Float32Array | undefined) {
    this.names = shapes.map(([n]) => n);
    this.variables = shapes.map(([name, shape]) => {
      const size = tf.util.sizeFromShape(shape);
      const value = valueOf(name, size);
      if (!value || value.length !== size) throw new Error(`weights: "${name}" missing or not of shape [${shape}]`);
      // Unnamed: tfjs variable names are process-global, and policy and anchor coexist.
      return (this.p[name] = tf.tidy(() => tf.variable(tf.tensor(value, shape, 'float32'))));
    });
  }

  paramCount(): number {
    return this.variables.reduce((n, v) => n + v.size, 0);
  }

  /** A weight by name. */
  weight(name: string): tf.Variable {
    const w = this.p[name];
    if (!w) throw new Error(`no weight "${name}"`);
    return w;
  }

  /** Weight values by name (downloaded from the backend). */
  getWeights(): NamedArrays {
    const out: NamedArrays = {};
    this.names.forEach((n, i) => (out[n] = (this.variables[i].dataSync() as Float32Array).slice())); // copies: cpu hands out its own buffer
    return out;
  }

  /** Overwrites the trainable weights by name (every one must be given, at its size). */
  setWeights(weights: NamedArrays): void {
    this.variables.forEach((v, i) => {
      const value = weights[this.names[i]];
      if (!value || value.length !== v.size) throw new Error(`weights: "${this.names[i]}" missing or not of shape [${v.shape}]`);
      tf.tidy(() => v.assign(tf.tensor(value, v.shape, 'float32')));
    });
  }

  /** this := other, variable by variable (same names and shapes): e.g. an anchor refresh. */
  copyFrom(other: Trainable): void {
    this.checkCompatible(other);
    this.variables.forEach((v, i) => v.assign(other.variables[i]));
  }

  /** this := lam * this + (1 - lam) * other, variable by variable (an EMA anchor). */
  emaFrom(other: Trainable, lam: number): void {
    this.checkCompatible(other);
    tf.tidy(() => this.variables.forEach((v, i) => v.assign(v.mul(lam).add(other.variables[i].mul(1 - lam)))));
  }

  dispose(): void {
    this.variables.forEach((v) => v.dispose());
  }

  protected checkCompatible(other: Trainable): void {
    const same =
      other.names.length === this.names.length &&
      other.variables.every((v, i) => other.names[i] === this.names[i] && v.size === this.variables[i].size);
    if (!same) throw new Error('models have different configs');
  }
}
