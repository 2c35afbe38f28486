/**
 * Every parameter's name and shape for our transformer and for the Llama family, in the order of
 * their variables. Plain data (no tfjs), so the checkpoint encoding (model/state.ts) and storage
 * can use it without loading a backend.
 */
import type { LlamaConfig } from './llama-config';
import type { ModelConfig } from './config';

/** Every parameter's name and shape, in a fixed order (the order of the transformer's `variables`). */
export function paramShapes(c: ModelConfig): [string, number[]][] {
  const { vocabSize: V, contextLength: T, dModel: D, dFF: F } = c;
  const shapes: [string, number[]][] = [
    ['wte', [V, D]],
    ['wpe', [T, D]],
  ];
  for (let l = 0; l < c.nLayers; l++) {
    shapes.push(
      [`h${l}.ln1.g`, [D]],
      [`h${l}.ln1.b`, [D]],
      [`h${l}.attn.wq`, [D, D]],
      [`h${l}.attn.wk`, [D, D]],
      [`h${l}.attn.wv`, [D, D]],
      [`h${l}.attn.wo`, [D, D]],
      [`h${l}.ln2.g`, [D]],
      [`h${l}.ln2.b`, [D]],
      [`h${l}.mlp.w1`, [D, F]],
      [`h${l}.mlp.w2`, [F, D]],
    );
  }
  shapes.push(['lnf.g', [D]], ['lnf.b', [D]]);
  if (!c.tieEmbeddings) shapes.push(['head', [D, V]]);
  return shapes;
}

/** Every parameter's name and shape, in a fixed order (the order of the Llama model's `variables`). */
export function llamaParamShapes(c: LlamaConfig): [string, number[]][] {
  const { vocabSize: V, dModel: D, nHeads: H, nKvHeads: G, headDim: K, dFF: F } = c;
  const shapes: [string, number[]][] = [['wte', [V, D]]];
  for (let l = 0; l < c.nLayers; l++) {
    shapes.push([`h${l}.ln1.g`, [D]], [`h${l}.attn.wq`, [D, H * K]], [`h${l}.attn.wk`, [D, G * K]], [`h${l}.attn.wv`, [D, G * K]]);
    if (c.qkvBias) shapes.push([`h${l}.attn.bq`, [H * K]], [`h${l}.attn.bk`, [G * K]], [`h${l}.attn.bv`, [G * K]]);
    shapes.push(
      [`h${l}.attn.wo`, [H * K, D]],
      [`h${l}.ln2.g`, [D]],
      [`h${l}.mlp.wg`, [D, F]],
      [`h${l}.mlp.wu`, [D, F]],
      [`h${l}.mlp.wd`, [F, D]],
    );
  }
  shapes.push(['lnf.g', [D]]);
  if (!c.tieEmbeddings) shapes.push(['head', [D, V]]);
  return shapes;
}
