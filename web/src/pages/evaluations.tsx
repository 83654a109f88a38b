/** The charts shared by evaluations, decompositions and compositions: accuracy and confusion. */
import { useMemo, useState } from 'preact/hooks';
import type { EvaluationResult } from '../api';
import { confusionSpec, perClassLabels, perClassSpec } from '../specs';
import { Chart, Facts, pct } from '../ui';

/** Confusion matrices side by side, with one row-normalised toggle for all of them. */
export function Confusions({ labels, matrices }: { labels: string[]; matrices: { name: string; matrix: number[][]; testId: string }[] }) {
  const [normalised, setNormalised] = useState(false);
  const specs = useMemo(
    () => matrices.map((m) => ({ ...m, spec: confusionSpec(labels, m.matrix, { normalised, title: m.name }) })),
    [labels, matrices, normalised],
  );
  return (
    <div>
      <label class="toggle">
        <input type="checkbox" checked={normalised} onChange={(e) => setNormalised(e.currentTarget.checked)} /> Row-normalised (fraction of each true class)
      </label>
      <div class="charts">
        {specs.map((s) => (
          <Chart key={s.name} spec={s.spec} label={`Confusion matrix: ${s.name} (rows true class, columns predicted)`} testId={s.testId} />
        ))}
      </div>
    </div>
  );
}

/** `counts`: images per class, when recorded; a class with none is labelled so (its 0 is no measurement). */
export function PerClass({
  labels,
  a,
  b,
  counts,
}: {
  labels: string[];
  a: { name: string; values: number[] };
  b: { name: string; values: number[] };
  counts?: readonly (number | undefined)[];
}) {
  const spec = useMemo(() => perClassSpec(perClassLabels(labels, counts), a, b), [labels, a, b, counts]);
  return <Chart spec={spec} label={`Per-class accuracy, ${a.name} vs ${b.name} (difference in points at the right)`} testId="per-class" />;
}

export function EvaluationResultView({ result }: { result: EvaluationResult }) {
  const labels = result.labels ?? result.perClass.map((_, i) => String(i));
  const matrices = useMemo(() => [{ name: 'evaluated', matrix: result.confusion, testId: 'confusion-evaluation' }], [result]);
  return (
    <div data-testid="evaluation-result">
      <Facts
        rows={[
          ['Images scored', result.count],
          ['Top-1', pct(result.top1)],
          ['Top-5', pct(result.top5)],
          ...(result.baseline ? ([['Baseline (restricted model) top-1', pct(result.baseline.top1)]] as [string, string][]) : []),
        ]}
      />
      <Confusions labels={labels} matrices={matrices} />
    </div>
  );
}
