import { Resvg } from '@resvg/resvg-js';

/**
 * One chart SVG as PNG bytes, for pasting into slides. Rendered at 2x for crispness on a white
 * background; the charts ask for the generic `sans-serif`, which resvg maps to DejaVu Sans (on
 * Debian and most Linux systems) from the system fonts.
 */
export function svgToPng(svg: string, zoom = 2): Uint8Array {
  const resvg = new Resvg(svg, {
    fitTo: { mode: 'zoom', value: zoom },
    background: 'white',
    font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans', sansSerifFamily: 'DejaVu Sans' },
  });
  return new Uint8Array(resvg.render().asPng());
}
