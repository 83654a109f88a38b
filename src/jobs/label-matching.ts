/**
 * Which composition label each class of a dataset stands for. Checked when a request names the
 * dataset (422 up front) and used by the worker that scores it, so both agree.
 * - By name: the dataset's class name, or its `labelMapping` entry, is a label.
 * - By index, only when no name matches and no mapping was given: a dataset without class names
 *   has labels that are class indices of the model, so class i is the module of class i (when all
 *   modules come from one model with at least as many classes as the dataset).
 */
import { UnprocessableError } from '../errors';

export interface LabelledModule {
  readonly label: string;
  readonly classIndex: number;
  readonly modelId: string;
  readonly modelClasses: number;
}

export interface DatasetClasses {
  readonly id: string;
  readonly numClasses: number;
  readonly classNames: string[] | null;
}

/** @returns per dataset class, the position of its label among `modules`, or -1 when it has none */
export function matchDatasetClasses(ds: DatasetClasses, modules: readonly LabelledModule[], labelMapping?: Record<string, string>): number[] {
  const labels = modules.map((m) => m.label);
  const names = ds.classNames ?? Array.from({ length: ds.numClasses }, (_, i) => String(i));
  let toLabel = names.map((n) => labels.indexOf(labelMapping && Object.hasOwn(labelMapping, n) ? labelMapping[n] : n));
  if (toLabel.every((p) => p < 0) && !ds.classNames && !labelMapping && byIndexApplies(ds, modules)) {
    toLabel = names.map((_, i) => modules.findIndex((m) => m.classIndex === i));
  }
  if (toLabel.every((p) => p < 0)) {
    const shown = (xs: string[]) => (xs.length > 12 ? `${xs.slice(0, 12).join(', ')}, ... (${xs.length})` : xs.join(', '));
    throw new UnprocessableError(
      `no class of dataset ${ds.id} (${ds.classNames ? shown(names) : `unnamed classes 0..${ds.numClasses - 1}`}) matches a label of the composition ` +
        `(${shown(labels)}); give labelMapping {"<dataset class>": "<label>"} to say which class serves which label`,
    );
  }
  return toLabel;
}

function byIndexApplies(ds: DatasetClasses, modules: readonly LabelledModule[]): boolean {
  const oneModel = new Set(modules.map((m) => m.modelId)).size === 1;
  return oneModel && modules.every((m) => m.modelClasses >= ds.numClasses);
}
