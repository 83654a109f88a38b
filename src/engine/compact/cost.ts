/**
 * What a network costs as a function of the channels it keeps: multiply-accumulates (the FLOPs
 * unit of the literature) of its Conv2D, DepthwiseConv2D and Dense layers and the head, and its
 * parameter count. Computed from the plan and per-space channel counts, so the allocator can price
 * a candidate cut without building anything.
 */
import type { ModelPlan } from '../graph';
import type { ChannelMap } from './spaces';

/** Per space: channels kept. */
export type Counts = readonly number[];

interface Term {
  /** Multiplier of (input width x output width), or of the width for a depthwise layer. */
  readonly macs: number;
  readonly inKey?: string;
  readonly outKey: string;
  readonly depthwise: boolean;
}

export class CostModel {
  private readonly terms: Term[] = [];
  private readonly full: number[];

  constructor(
    private readonly plan: ModelPlan,
    private readonly map: ChannelMap,
  ) {
    this.full = map.spaces.map((s) => s.channels);
    for (const step of plan.steps) {
      const shape = plan.shapes.get(step.output) ?? [];
      const positions = shape.slice(0, -1).reduce((a, b) => a * b, 1);
      const c = step.layer.getConfig() as { kernelSize?: number | number[] };
      const k = Array.isArray(c.kernelSize) ? c.kernelSize.reduce((a, b) => a * b, 1) : (c.kernelSize ?? 1) ** 2;
      if (step.className === 'Conv2D') this.terms.push({ macs: positions * k, inKey: step.inputs[0], outKey: step.output, depthwise: false });
      else if (step.className === 'Dense') this.terms.push({ macs: positions, inKey: step.inputs[0], outKey: step.output, depthwise: false });
      else if (step.className === 'DepthwiseConv2D') this.terms.push({ macs: positions * k, outKey: step.output, depthwise: true });
    }
  }

  /** Input width of a layer reading `key`: its channels, times positions when it was flattened. */
  private width(key: string, counts: Counts): number {
    return counts[this.map.spaceOf.get(key) as number] * (this.map.positionsOf.get(key) ?? 1);
  }

  /** MACs of the network up to the features, plus a head of `headUnits` outputs. */
  macs(counts: Counts, headUnits: number): number {
    let total = 0;
    for (const t of this.terms) {
      const out = counts[this.map.spaceOf.get(t.outKey) as number];
      total += t.depthwise ? t.macs * out : t.macs * this.width(t.inKey as string, counts) * out;
    }
    return total + this.width(this.plan.featuresKey, counts) * headUnits;
  }

  /** MACs of the model as it is (all channels, its own head). */
  modelMacs(): number {
    return this.macs(this.full, this.plan.headWeights().classes);
  }

  get fullCounts(): Counts {
    return this.full;
  }
}
