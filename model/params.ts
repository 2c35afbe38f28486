import * as tf from '@tensorflow/tfjs';

/** Named weight values: what init, checkpoints, pretrained files and clones exchange. */
export type NamedArrays = Record<string, Float32Array>;

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

  dispose(): void {
    this.variables.forEach((v) => v.dispose());
  }
}
