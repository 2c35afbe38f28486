import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { svgToPng } from '../../../report/png';
import { lineChart } from '../../../report/svg';
import { decodePng, inkFraction } from '../../integration/png';

describe('chart PNGs', () => {
  it('renders a line chart at 2x with its lines and its text', () => {
    const svg = lineChart({
      title: 'SFT loss',
      xLabel: 'step',
      yLabel: 'loss',
      series: [
        {
          name: 'train',
          points: [
            [1, 3],
            [2, 2],
            [3, 1.5],
            [4, 1.2],
          ],
        },
      ],
    });
    const bytes = svgToPng(svg);
    expect([...bytes.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    const dir = mkdtempSync(join(tmpdir(), 't1-png-'));
    try {
      writeFileSync(join(dir, 'chart.png'), bytes);
      const png = decodePng(join(dir, 'chart.png'));
      expect([png.width, png.height]).toEqual([1120, 640]);
      // Mostly white background, but with ink: axes, the series, the labels.
      const ink = inkFraction(png);
      expect(ink).toBeGreaterThan(0.005);
      expect(ink).toBeLessThan(0.5);
      // The title is the only thing in the top 30 SVG units: ink there means fonts were found.
      const top = { ...png, height: 60, pixels: png.pixels.subarray(0, 60 * png.width * png.channels) };
      expect(inkFraction(top) * top.width * top.height).toBeGreaterThan(200);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
