/**
 * API responses into Vega-Lite specs: the only place that knows what the charts look like. Pure
 * (no DOM, no fetch), so it is unit-tested against fixed responses (test/web/specs.test.ts).
 * Colour scales are viridis (readable by colour-blind users) and every coloured cell prints its
 * number, so no figure lives in colour alone.
 */
import type { TopLevelSpec } from 'vega-lite';

/** Cell text turns white on the dark half of viridis. */
const textColour = (field: string, threshold: number) => ({
  condition: { test: `datum['${field}'] > ${threshold}`, value: 'black' },
  value: 'white',
});

const font = { font: 'system-ui, sans-serif', axis: { labelFontSize: 11, titleFontSize: 12 } };

export interface Series {
  readonly name: string;
  /** One value per label, fractions in [0, 1]. */
  readonly values: readonly number[];
}

/** Class labels for a per-class chart: a class scored on no image says so, its 0 being no measurement. */
export function perClassLabels(labels: readonly string[], counts?: readonly (number | undefined)[]): string[] {
  return labels.map((l, i) => (counts?.[i] === 0 ? `${l} (no image)` : l));
}

/**
 * Per-class accuracy of two classifiers as a dumbbell: one row per class, a dot per classifier,
 * the line between them and the difference (second minus first, in points) printed at the right.
 */
export function perClassSpec(labels: readonly string[], a: Series, b: Series): TopLevelSpec {
  const rows = labels.map((label, i) => ({ label, a: a.values[i], b: b.values[i], delta: (b.values[i] - a.values[i]) * 100 }));
  const long = rows.flatMap((r) => [
    { label: r.label, series: a.name, accuracy: r.a },
    { label: r.label, series: b.name, accuracy: r.b },
  ]);
  const y = { field: 'label', type: 'nominal' as const, sort: [...labels], title: 'class' };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    description: `Per-class accuracy: ${a.name} vs ${b.name}`,
    config: font,
    width: 360,
    height: { step: 20 },
    layer: [
      {
        data: { values: rows },
        mark: { type: 'rule', color: '#888' },
        encoding: { y, x: { field: 'a', type: 'quantitative' }, x2: { field: 'b' } },
      },
      {
        data: { values: long },
        mark: { type: 'point', filled: true, size: 80 },
        name: 'dots',
        encoding: {
          y,
          x: { field: 'accuracy', type: 'quantitative', scale: { domain: [0, 1] }, axis: { format: '%' }, title: 'accuracy' },
          color: {
            field: 'series',
            type: 'nominal',
            scale: { domain: [a.name, b.name], range: ['#440154', '#21918c'] },
            title: null,
            legend: { orient: 'top' },
          },
          shape: {
            field: 'series',
            type: 'nominal',
            scale: { domain: [a.name, b.name], range: ['circle', 'diamond'] },
            title: null,
            legend: { orient: 'top' },
          },
          tooltip: [
            { field: 'label', title: 'class' },
            { field: 'series', title: 'classifier' },
            { field: 'accuracy', format: '.2%' },
          ],
        },
      },
      {
        data: { values: rows },
        mark: { type: 'text', align: 'left', dx: 6 },
        name: 'deltas',
        encoding: {
          y,
          x: { datum: 1 },
          text: { field: 'delta', type: 'quantitative', format: '+.1f' },
        },
      },
    ],
  };
}

export interface MatrixOptions {
  /** Row-normalise: each true class's row sums to 1 (fractions printed instead of counts). */
  readonly normalised?: boolean;
  readonly title?: string;
}

/** A confusion matrix: rows = true class, columns = predicted, the count (or row fraction) printed in every cell. */
export function confusionSpec(labels: readonly string[], matrix: readonly (readonly number[])[], opts: MatrixOptions = {}): TopLevelSpec {
  const values = matrix.flatMap((row, t) => {
    const total = row.reduce((s, v) => s + v, 0);
    return row.map((count, p) => ({
      truth: labels[t],
      predicted: labels[p],
      count,
      value: opts.normalised ? (total ? count / total : 0) : count,
    }));
  });
  const max = Math.max(1, ...values.map((v) => v.value));
  return heatmap({
    values,
    x: { field: 'predicted', title: 'predicted class' },
    y: { field: 'truth', title: 'true class' },
    labels,
    domain: opts.normalised ? [0, 1] : [0, max],
    format: opts.normalised ? '.2f' : 'd',
    title: opts.title,
    colourTitle: opts.normalised ? 'row fraction' : 'images',
    threshold: (opts.normalised ? 1 : max) * 0.5,
  });
}

/** Pairwise mask Jaccard of modules, on a fixed [0, 1] scale so decompositions compare. */
export function jaccardSpec(labels: readonly string[], pairwise: readonly (readonly number[])[]): TopLevelSpec {
  const values = pairwise.flatMap((row, a) => row.map((value, b) => ({ a: labels[a], b: labels[b], value })));
  return heatmap({
    values,
    x: { field: 'b', title: 'module' },
    y: { field: 'a', title: 'module' },
    labels,
    domain: [0, 1],
    format: '.2f',
    colourTitle: 'Jaccard',
    threshold: 0.5,
  });
}

export interface ModuleLayers {
  readonly label: string;
  readonly perLayer: readonly { readonly layer: string; readonly units: number; readonly kept: number }[];
}

/** Kept fraction of each observation point (rows, in network order) for each module (columns). */
export function keptSpec(modules: readonly ModuleLayers[]): TopLevelSpec {
  const layers = modules[0]?.perLayer.map((l) => l.layer) ?? [];
  const values = modules.flatMap((m) =>
    m.perLayer.map((l) => ({ module: m.label, layer: l.layer, kept: l.kept, units: l.units, value: l.units ? l.kept / l.units : 0 })),
  );
  return heatmap({
    values,
    x: { field: 'module', title: 'module' },
    y: { field: 'layer', title: 'observation point' },
    labels: modules.map((m) => m.label),
    rowLabels: layers,
    domain: [0, 1],
    format: '.0%',
    colourTitle: 'kept',
    threshold: 0.5,
    tooltip: [
      { field: 'kept', title: 'kept units' },
      { field: 'units', title: 'units' },
    ],
  });
}

interface HeatmapSpec {
  readonly values: object[];
  readonly x: { field: string; title: string };
  readonly y: { field: string; title: string };
  readonly labels: readonly string[];
  readonly rowLabels?: readonly string[];
  readonly domain: [number, number];
  readonly format: string;
  readonly colourTitle: string;
  readonly threshold: number;
  readonly title?: string;
  readonly tooltip?: object[];
}

function heatmap(h: HeatmapSpec): TopLevelSpec {
  const step = h.labels.length > 20 ? 16 : 34;
  const x = { field: h.x.field, type: 'ordinal' as const, sort: [...h.labels], title: h.x.title, axis: { labelAngle: -45 } };
  const y = { field: h.y.field, type: 'ordinal' as const, sort: [...(h.rowLabels ?? h.labels)], title: h.y.title };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    ...(h.title ? { title: h.title } : {}),
    config: { ...font, view: { stroke: null } },
    data: { values: h.values },
    width: { step },
    height: { step: h.rowLabels ? 22 : step },
    layer: [
      {
        mark: { type: 'rect', stroke: 'white', strokeWidth: 0.5 },
        name: 'cells',
        encoding: {
          x,
          y,
          color: { field: 'value', type: 'quantitative', scale: { scheme: 'viridis', domain: h.domain }, title: h.colourTitle },
          tooltip: [
            { field: h.y.field, title: h.y.title },
            { field: h.x.field, title: h.x.title },
            { field: 'value', format: h.format, title: h.colourTitle },
            ...(h.tooltip ?? []),
          ],
        },
      },
      {
        mark: { type: 'text', fontSize: step > 20 ? 10 : 7 },
        name: 'numbers',
        encoding: {
          x,
          y,
          text: { field: 'value', type: 'quantitative', format: h.format },
          color: textColour('value', h.threshold),
        },
      },
    ],
  };
}

/** Images per class as labelled bars. */
export function classCountsSpec(labels: readonly string[], counts: readonly number[]): TopLevelSpec {
  const values = labels.map((label, i) => ({ label, count: counts[i] }));
  const x = { field: 'label', type: 'nominal' as const, sort: [...labels], title: 'class', axis: { labelAngle: -45 } };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    description: 'Images per class',
    config: font,
    data: { values },
    width: { step: labels.length > 40 ? 8 : 28 },
    height: 180,
    layer: [
      { mark: { type: 'bar', color: '#3b528b' }, name: 'bars', encoding: { x, y: { field: 'count', type: 'quantitative', title: 'images' } } },
      ...(labels.length <= 40
        ? [
            {
              mark: { type: 'text' as const, dy: -6, fontSize: 9 },
              name: 'counts',
              encoding: { x, y: { field: 'count', type: 'quantitative' as const }, text: { field: 'count' } },
            },
          ]
        : []),
    ],
  };
}

export interface Prediction {
  readonly label: string;
  readonly probability: number;
}

/** Top-k predictions as horizontal bars, best first, the probability printed beside each. */
export function predictionSpec(predictions: readonly Prediction[]): TopLevelSpec {
  const values = predictions.map((p, rank) => ({ label: p.label, probability: p.probability, rank }));
  const y = { field: 'label', type: 'nominal' as const, sort: { field: 'rank', order: 'ascending' as const }, title: null };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    description: 'Top predictions',
    config: font,
    data: { values },
    width: 280,
    height: { step: 22 },
    layer: [
      {
        mark: { type: 'bar', color: '#21918c' },
        name: 'bars',
        encoding: { y, x: { field: 'probability', type: 'quantitative', scale: { domain: [0, 1] }, title: 'P(class)' } },
      },
      {
        mark: { type: 'text', align: 'left', dx: 4 },
        name: 'probabilities',
        encoding: { y, x: { field: 'probability', type: 'quantitative' }, text: { field: 'probability', format: '.3f' } },
      },
    ],
  };
}
