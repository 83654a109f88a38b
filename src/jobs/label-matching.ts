/**
 * Which composition label each class of a dataset stands for. Checked when a request names the
 * dataset (422 up front) and used by the worker that scores it, so both agree.
 * - By name: the dataset's class name, or its `labelMapping` entry, is a label.
 * - By index, only when no name matches and no mapping was given: a dataset without class names
 *   has labels that are class indices of the model, so class i is the module of class i (when all
 *   modules come from one model with at least as many classes as the dataset).
 */
import { UnprocessableError } from '../errors';
import type { ModuleSource } from '../store/modules';

export interface LabelledModule {
  readonly label: string;
  readonly classIndex: number;
  readonly modelId: string;
  readonly modelClasses: number;
}

/** A composition member as label matching sees it. */
export function labelled(label: string, source: ModuleSource): LabelledModule {
  return { label, classIndex: source.module.classIndex, modelId: source.model.id, modelClasses: source.model.numClasses ?? 0 };
}

export interface DatasetClasses {
  readonly id: string;
  readonly numClasses: number;
  readonly classNames: string[] | null;
}

/**
 * @param strictKeys every mapping key must be a class of this dataset (an evaluation's mapping is
 *   for its one dataset; a composition's also serves its continuous-learning datasets)
 * @returns per dataset class, the position of its label among `modules`, or -1 when it has none
 * @throws UnprocessableError when nothing matches, or the mapping names a label (or, strict, a
 *   class) that does not exist: a typo would otherwise score fewer classes without a word
 */
export function matchDatasetClasses(
  ds: DatasetClasses,
  modules: readonly LabelledModule[],
  labelMapping?: Record<string, string>,
  strictKeys = false,
): number[] {
  const labels = modules.map((m) => m.label);
  const names = ds.classNames ?? Array.from({ length: ds.numClasses }, (_, i) => String(i));
  if (labelMapping) checkMapping(ds, names, labels, labelMapping, strictKeys);
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

function checkMapping(ds: DatasetClasses, names: string[], labels: string[], mapping: Record<string, string>, strictKeys: boolean): void {
  const badLabels = [...new Set(Object.values(mapping))].filter((l) => !labels.includes(l));
  if (badLabels.length > 0) {
    throw new UnprocessableError(
      `labelMapping maps to ${badLabels.map((l) => JSON.stringify(l)).join(', ')}, not labels of the composition (${labels.join(', ')})`,
    );
  }
  const badKeys = strictKeys ? Object.keys(mapping).filter((k) => !names.includes(k)) : [];
  if (badKeys.length > 0) {
    throw new UnprocessableError(`labelMapping names ${badKeys.map((k) => JSON.stringify(k)).join(', ')}, not classes of dataset ${ds.id}`);
  }
}

/**
 * Continuous learning: the label each class of `ds` serves (undefined: the class is not used).
 * With an entry of its own in `continuousLearning.labelMappings`, only the classes it names; else
 * the composition's `labelMapping` entry, or the class name itself.
 */
export function continuousLearningLabels(ds: DatasetClasses, own?: Record<string, string>, mapping: Record<string, string> = {}): (string | undefined)[] {
  const names = ds.classNames ?? Array.from({ length: ds.numClasses }, (_, i) => String(i));
  const mapped = (m: Record<string, string>, n: string) => (Object.hasOwn(m, n) ? m[n] : undefined);
  return names.map((n) => (own ? mapped(own, n) : (mapped(mapping, n) ?? n)));
}
