/** Exactly one processor per job type: the Record type makes a missing one a compile error. */
import type { JobType } from '../queues';
import type { Processor } from '../context';
import { inspectModel } from './inspect-model';
import { evaluateProcessor } from './evaluate';
import { decomposeProcessor } from './decompose';
import { composeProcessor } from './compose';
import { exportModuleProcessor } from './export-module';
import { predictProcessor } from './predict';

export const PROCESSORS: { [T in JobType]: Processor<T> } = {
  'inspect-model': inspectModel,
  evaluate: evaluateProcessor,
  decompose: decomposeProcessor,
  compose: composeProcessor,
  'export-module': exportModuleProcessor,
  predict: predictProcessor,
};
