/**
 * How many channels each space keeps under a FLOPs budget, and which.
 *
 * - uniform: every prunable space keeps the same fraction (the largest that fits the budget);
 * - global: channels leave one at a time, always the one whose score (normalised by its space's
 *   mean, so spaces compare) is lowest per FLOP its removal saves: layers where the module is
 *   insensitive, or that are expensive, give more.
 * Every space keeps at least MIN_KEEP of its channels (at least one), so no path is cut off, and
 * under global allocation a residual stream keeps at least RESIDUAL_KEEP: every block reads and
 * writes it, so what the stream loses no later re-fit can bring back (ResNet-20, energy, one
 * process: against uniform -0.2 pt at 50 % of the FLOPs and +1.35 pt at 25 %; global without the
 * floor gave up 6 and 19 pt to uniform; bench/README.md).
 */
import type { CostModel } from './cost';
import type { KeepSets } from './network';
import type { ChannelMap, ChannelSpace } from './spaces';

export const COMPACT_ALLOCATIONS = ['uniform', 'global'] as const;
export type CompactAllocation = (typeof COMPACT_ALLOCATIONS)[number];

const MIN_KEEP = 1 / 16;
const RESIDUAL_KEEP = 1 / 2;

function minKeep(space: ChannelSpace, how: CompactAllocation): number {
  const floor = how === 'global' && space.residual ? RESIDUAL_KEEP : MIN_KEEP;
  return Math.max(1, Math.ceil(space.channels * floor));
}

/**
 * @param budget MACs the network (with its 2-unit head) may cost
 * @returns per space, the kept channel indices (ascending)
 */
export function allocate(map: ChannelMap, cost: CostModel, scores: readonly Float32Array[], budget: number, how: CompactAllocation): KeepSets {
  const counts = how === 'uniform' ? uniformCounts(map, cost, budget) : globalCounts(map, cost, scores, budget);
  return counts.map((k, s) => topChannels(scores[s], k, map.spaces[s].channels));
}

function uniformCounts(map: ChannelMap, cost: CostModel, budget: number): number[] {
  const at = (r: number): number[] => map.spaces.map((sp) => (sp.prunable ? Math.max(minKeep(sp, 'uniform'), Math.ceil(sp.channels * r)) : sp.channels));
  if (cost.macs(at(1), 2) <= budget) return at(1);
  let lo = 0;
  let hi = 1;
  for (let it = 0; it < 30; it++) {
    const mid = (lo + hi) / 2;
    if (cost.macs(at(mid), 2) <= budget) lo = mid;
    else hi = mid;
  }
  return at(lo);
}

function globalCounts(map: ChannelMap, cost: CostModel, scores: readonly Float32Array[], budget: number): number[] {
  const counts = map.spaces.map((sp) => sp.channels);
  // Per prunable space: its channels' normalised scores, ascending (the next to leave first).
  const queues = map.spaces.map((sp, s) => {
    if (!sp.prunable) return [];
    const v = Array.from(scores[s]);
    const mean = v.reduce((a, b) => a + b, 0) / v.length || 1;
    return v.map((x) => x / mean).sort((a, b) => a - b);
  });
  const removed = map.spaces.map(() => 0);
  let total = cost.macs(counts, 2);
  while (total > budget) {
    let best = -1;
    let bestValue = Number.POSITIVE_INFINITY;
    let bestTotal = total;
    map.spaces.forEach((sp, s) => {
      if (!sp.prunable || counts[s] <= minKeep(sp, 'global')) return;
      counts[s] -= 1;
      const next = cost.macs(counts, 2);
      counts[s] += 1;
      const saved = total - next;
      const value = saved > 0 ? queues[s][removed[s]] / saved : Number.POSITIVE_INFINITY;
      if (value < bestValue) {
        best = s;
        bestValue = value;
        bestTotal = next;
      }
    });
    if (best < 0) break;
    counts[best] -= 1;
    removed[best] += 1;
    total = bestTotal;
  }
  return counts;
}

/** The `k` highest-scoring channels, ascending by index (ties keep the lower index). */
function topChannels(score: Float32Array, k: number, channels: number): Int32Array {
  if (k >= channels) return Int32Array.from({ length: channels }, (_, i) => i);
  const order = Array.from({ length: channels }, (_, i) => i).sort((a, b) => score[b] - score[a] || a - b);
  return Int32Array.from(order.slice(0, k).sort((a, b) => a - b));
}
