/**
 * The label checks every format shares: labels lie in the class range, and the class count and
 * per-class counts are derived the same way for all. They run over the labels as they stream
 * past (`LabelTally`), so no format needs its labels whole.
 */
import { BadRequestError } from '../../../errors';
import { readWhole, type DatasetSource } from './source';
import type { TensorPlan } from './types';

/** Without class names, numClasses is max label + 1; this keeps a stray huge label from sizing arrays. */
export const MAX_CLASSES = 100_000;

/** MAX_CLASSES names of ~100 characters; a bigger "names file" is not one, and is not read into memory. */
const MAX_CLASS_NAMES_BYTES = 16 * 1024 * 1024;

/** One name per line, as in CIFAR's `batches.meta.txt`; copies in the wild carry blank lines and spaces. */
export async function readClassNames(file: DatasetSource): Promise<string[]> {
  if (file.size > MAX_CLASS_NAMES_BYTES) {
    throw new BadRequestError(`${file.name}: ${file.size} bytes is too large for a class-name file (at most ${MAX_CLASS_NAMES_BYTES})`);
  }
  const names = (await readWhole(file))
    .toString('utf8')
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line.length > 0);
  if (names.length === 0) throw new BadRequestError(`${file.name}: lists no class names`);
  if (names.length > MAX_CLASSES) {
    throw new BadRequestError(`${file.name}: lists ${names.length} class names, more than ${MAX_CLASSES}`);
  }
  return names;
}

export interface ClassSummary {
  readonly numClasses: number;
  /** Length numClasses. */
  readonly classCounts: number[];
}

/** Checks labels chunk by chunk, in order, and counts them per class. */
export class LabelTally {
  /** Labels seen so far. */
  count = 0;
  private max = -1;
  private readonly limit: number;
  private readonly why: string;
  private readonly perClass: Uint32Array;

  constructor(private readonly plan: Pick<TensorPlan, 'classNames' | 'maxClasses' | 'labelSource'>) {
    ({ limit: this.limit, why: this.why } = labelLimit(plan));
    this.perClass = new Uint32Array(this.limit);
  }

  /** @throws BadRequestError naming the first label out of range and its index. */
  add(labels: Int32Array): void {
    for (let i = 0; i < labels.length; i++) {
      const label = labels[i]!;
      if (label < 0 || label >= this.limit) {
        throw new BadRequestError(
          `label ${label} at index ${this.count + i} in ${this.plan.labelSource} is out of range: labels must be in [0, ${this.limit - 1}] (${this.why})`,
        );
      }
      if (label > this.max) this.max = label;
      this.perClass[label]! += 1;
    }
    this.count += labels.length;
  }

  summary(): ClassSummary {
    const numClasses = this.plan.classNames?.length ?? this.max + 1;
    return { numClasses, classCounts: Array.from({ length: numClasses }, (_, i) => this.perClass[i] ?? 0) };
  }
}

function labelLimit(d: Pick<TensorPlan, 'classNames' | 'maxClasses'>): { limit: number; why: string } {
  if (d.classNames && d.classNames.length <= (d.maxClasses ?? MAX_CLASSES)) {
    return { limit: d.classNames.length, why: `${d.classNames.length} class names were given` };
  }
  if (d.maxClasses !== undefined) return { limit: d.maxClasses, why: `the format has ${d.maxClasses} classes` };
  return { limit: MAX_CLASSES, why: `at most ${MAX_CLASSES} classes are supported` };
}
