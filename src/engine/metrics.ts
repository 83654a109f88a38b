/**
 * Classification metrics (ALGORITHM.md sections 5 and 7), written once for model evaluation,
 * decomposition metrics, composition scoring and prediction: top-k ranking, the top-1/top-5 and
 * confusion tally, one-vs-rest accuracy and P_c from a module margin. Plain numbers, no TF.js.
 */

/**
 * Indices of the `k` highest values of `row`, best first. Ties resolve toward the lower index, as
 * argmax does: element 0 is the argmax, and an index is in the top k exactly when fewer than k
 * values beat it (strictly higher, or equal at a lower index).
 */
export function topK(row: ArrayLike<number>, k: number): number[] {
  const top: number[] = [];
  for (let j = 0; j < row.length; j++) {
    // Strictly higher only: an equal value stays behind the lower index already placed.
    let at = top.length;
    while (at > 0 && row[j] > row[top[at - 1]]) at--;
    if (at < k) {
      top.splice(at, 0, j);
      if (top.length > k) top.pop();
    }
  }
  return top;
}

/** Top-k module positions of every input, from [n x modules] margins. Rank by margin, never by P_c: it saturates. */
export function rankByMargin(margins: Float32Array, modules: number, k: number): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < margins.length / modules; i++) out.push(topK(margins.subarray(i * modules, (i + 1) * modules), k));
  return out;
}

/**
 * P_c = softmax([z_c, z_uc])[0] from the margin m = z_c - z_uc, i.e. the logistic of m, computed
 * stably (no overflow for large |m|). P_c > 0.5 exactly when m > 0.
 */
export function probabilityFromMargin(m: number): number {
  return m >= 0 ? 1 / (1 + Math.exp(-m)) : Math.exp(m) / (1 + Math.exp(m));
}

export interface TopK {
  readonly top1: number;
  readonly top5: number;
}

/**
 * Streams (label, ranking) pairs into top-1 and top-5 hits and, given the number of classes, the
 * confusion matrix confusion[true][predicted] with per-class accuracy (recall).
 */
export class AccuracyTally {
  private n = 0;
  private hits1 = 0;
  private hits5 = 0;
  private readonly matrix?: number[][];

  /** @param classes size of the confusion matrix; without it only top-1/top-5 are kept */
  constructor(classes?: number) {
    if (classes !== undefined) this.matrix = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
  }

  /**
   * @param ranking classes best first (`topK(row, 5)`, mapped to class ids when needed)
   * A label outside the matrix still counts in `count` (as a miss unless ranked), not in the matrix.
   */
  add(label: number, ranking: readonly number[]): void {
    this.n++;
    if (ranking[0] === label) this.hits1++;
    const at = ranking.indexOf(label);
    if (at >= 0 && at < 5) this.hits5++;
    if (this.matrix && label >= 0 && label < this.matrix.length) this.matrix[label][ranking[0]]++;
  }

  get count(): number {
    return this.n;
  }

  topK(): TopK {
    return { top1: this.frac(this.hits1), top5: this.frac(this.hits5) };
  }

  /** confusion[true][predicted]; the tally's own matrix (it keeps counting if `add` is called again). */
  get confusion(): number[][] {
    if (!this.matrix) throw new Error('this tally keeps no confusion matrix');
    return this.matrix;
  }

  /** Per true class: the inputs counted (what tells a perClass 0 over none from a real 0). */
  classCounts(): number[] {
    return this.confusion.map((row) => row.reduce((a, v) => a + v, 0));
  }

  /** Per true class: the fraction predicted right (0 for a class with no input: see classCounts). */
  perClass(): number[] {
    return this.confusion.map((row, i) => {
      const t = row.reduce((a, v) => a + v, 0);
      return t ? row[i] / t : 0;
    });
  }

  private frac(v: number): number {
    return this.n ? v / this.n : 0;
  }
}

/** Per module: accuracy of "margin > 0" (P_c > 0.5) as a detector of its class, y == c. */
export class OneVsRestTally {
  private n = 0;
  private readonly correct: number[];

  /** @param classes class of each module, in margin-column order */
  constructor(private readonly classes: readonly number[]) {
    this.correct = new Array<number>(classes.length).fill(0);
  }

  /** @param margins one input's margins, one per module */
  add(label: number, margins: ArrayLike<number>): void {
    this.n++;
    for (let j = 0; j < this.classes.length; j++) if (margins[j] > 0 === (label === this.classes[j])) this.correct[j]++;
  }

  result(): number[] {
    return this.correct.map((v) => (this.n ? v / this.n : 0));
  }
}
