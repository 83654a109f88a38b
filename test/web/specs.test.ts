/** The chart specs against fixed API responses: every number of the response is in the spec's data, none invented. */
import { classCountsSpec, confusionSpec, jaccardSpec, keptSpec, perClassLabels, perClassSpec, predictionSpec } from '../../web/src/specs';

type Channel = Record<string, unknown> & { field?: string; sort?: unknown; scale?: { domain?: unknown } };
type Layered = {
  data?: { values: Record<string, unknown>[] };
  layer: { data?: { values: Record<string, unknown>[] }; name?: string; encoding: Record<string, Channel> }[];
};
const values = (spec: unknown, layer?: number): Record<string, unknown>[] => {
  const s = spec as Layered;
  return (layer === undefined ? s.data : (s.layer[layer].data ?? s.data))?.values ?? [];
};

// A decomposition response's metrics, cut to three classes.
const MODEL_CONFUSION = [
  [50, 3, 2],
  [4, 40, 6],
  [0, 5, 45],
];
const LABELS = ['cat', 'dog', 'frog'];

describe('confusionSpec', () => {
  it('has one cell per (true, predicted) pair holding the count, rows = true class', () => {
    const spec = confusionSpec(LABELS, MODEL_CONFUSION);
    const cells = values(spec);
    expect(cells).toHaveLength(9);
    expect(cells[1]).toEqual({ truth: 'cat', predicted: 'dog', count: 3, value: 3 });
    expect(cells[3]).toEqual({ truth: 'dog', predicted: 'cat', count: 4, value: 4 });
    expect(cells.map((c) => c.value)).toEqual(MODEL_CONFUSION.flat());
    const [rect, text] = (spec as unknown as Layered).layer;
    expect(rect.encoding.y.field).toBe('truth');
    expect(rect.encoding.x.field).toBe('predicted');
    expect(rect.encoding.color.scale).toEqual({ scheme: 'viridis', domain: [0, 50] });
    expect(text.encoding.text).toMatchObject({ field: 'value', format: 'd' });
  });

  it('row-normalised: each row sums to 1 on a fixed [0, 1] scale, counts kept beside', () => {
    const spec = confusionSpec(LABELS, MODEL_CONFUSION, { normalised: true });
    const cells = values(spec);
    for (let r = 0; r < 3; r++) expect(cells.slice(r * 3, r * 3 + 3).reduce((s, c) => s + (c.value as number), 0)).toBeCloseTo(1, 12);
    expect(cells[4]).toMatchObject({ count: 40, value: 0.8 });
    expect((spec as unknown as Layered).layer[0].encoding.color.scale?.domain).toEqual([0, 1]);
  });

  it('an empty row stays 0 rather than NaN', () => {
    const cells = values(
      confusionSpec(
        ['a', 'b'],
        [
          [0, 0],
          [1, 1],
        ],
        { normalised: true },
      ),
    );
    expect(cells.map((c) => c.value)).toEqual([0, 0, 0.5, 0.5]);
  });
});

describe('jaccardSpec', () => {
  it('is a module-by-module heatmap on a fixed [0, 1] scale, 1 on the diagonal', () => {
    const pairwise = [
      [1, 0.25, 0.5],
      [0.25, 1, 0.75],
      [0.5, 0.75, 1],
    ];
    const spec = jaccardSpec(LABELS, pairwise);
    const cells = values(spec);
    expect(cells).toHaveLength(9);
    expect(cells.map((c) => c.value)).toEqual(pairwise.flat());
    expect(cells[5]).toEqual({ a: 'dog', b: 'frog', value: 0.75 });
    expect((spec as unknown as Layered).layer[0].encoding.color.scale).toEqual({ scheme: 'viridis', domain: [0, 1] });
  });
});

describe('perClassSpec', () => {
  it('puts both classifiers per class and labels the difference in points', () => {
    const spec = perClassSpec(LABELS, { name: 'model', values: [0.9, 0.8, 0.7] }, { name: 'composed', values: [0.9, 0.85, 0.6] });
    expect(values(spec, 1)).toHaveLength(6);
    expect(values(spec, 1)[3]).toEqual({ label: 'dog', series: 'composed', accuracy: 0.85 });
    expect(values(spec, 2).map((r) => r.delta as number)).toEqual([0, expect.closeTo(5, 9), expect.closeTo(-10, 9)]);
  });
});

describe('keptSpec', () => {
  it('has one cell per (observation point, module), the kept fraction of its units', () => {
    const modules = [
      {
        label: 'cat',
        perLayer: [
          { layer: 'relu1', units: 16, kept: 8 },
          { layer: 'relu2', units: 32, kept: 32 },
        ],
      },
      {
        label: 'dog',
        perLayer: [
          { layer: 'relu1', units: 16, kept: 4 },
          { layer: 'relu2', units: 32, kept: 0 },
        ],
      },
    ];
    const cells = values(keptSpec(modules));
    expect(cells.map((c) => [c.module, c.layer, c.value])).toEqual([
      ['cat', 'relu1', 0.5],
      ['cat', 'relu2', 1],
      ['dog', 'relu1', 0.25],
      ['dog', 'relu2', 0],
    ]);
    expect((keptSpec(modules) as unknown as Layered).layer[0].encoding.y.sort).toEqual(['relu1', 'relu2']);
  });
});

describe('classCountsSpec and predictionSpec', () => {
  it('bars carry the dataset counts and the predictions in rank order', () => {
    expect(values(classCountsSpec(LABELS, [10, 20, 30])).map((v) => v.count)).toEqual([10, 20, 30]);
    const preds = predictionSpec([
      { label: 'dog', probability: 0.9 },
      { label: 'cat', probability: 0.2 },
    ]);
    expect(values(preds)).toEqual([
      { label: 'dog', probability: 0.9, rank: 0 },
      { label: 'cat', probability: 0.2, rank: 1 },
    ]);
  });
});

describe('perClassLabels', () => {
  it('marks a class scored on no image, and only when its count is known to be 0', () => {
    expect(perClassLabels(['1', 'Trouser', 'cat'], [300, 0, undefined])).toEqual(['1', 'Trouser (no image)', 'cat']);
    expect(perClassLabels(['a', 'b'])).toEqual(['a', 'b']);
  });
});
