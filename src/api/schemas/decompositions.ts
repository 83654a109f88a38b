import { Type, type Static } from '@sinclair/typebox';
import { ClassCounts, FilterId, ListOf, PageQuery } from './common';
// The defaults' one definition is the engine's; the api reaches it through the queue contract.
import { DEFAULT_COMPACT_OPTIONS as C, DEFAULT_DECOMPOSE_OPTIONS as D } from '../../jobs/queues';

export const CompactOptions = Type.Object(
  {
    flops: Type.Number({
      exclusiveMinimum: 0,
      maximum: 1,
      description: "each module's budget: its multiply-accumulates as a fraction of the model's (1 keeps every channel)",
    }),
    criterion: Type.Optional(
      Type.Union([Type.Literal('activation-rate'), Type.Literal('energy'), Type.Literal('taylor')], {
        default: C.criterion,
        description: 'how channels are ranked: activation rate, energy (mean squared activation x outgoing weight norm), or |margin gradient x activation|',
      }),
    ),
    allocation: Type.Optional(
      Type.Union([Type.Literal('uniform'), Type.Literal('global')], {
        default: C.allocation,
        description: 'uniform: every layer keeps the same fraction; global: layers give channels by score per FLOP saved',
      }),
    ),
    refit: Type.Optional(Type.Boolean({ default: C.refit, description: 're-fit the remaining layers by ridge regression (false: cut only)' })),
    ridge: Type.Optional(
      Type.Number({ minimum: 0, maximum: 10, default: C.ridge, description: 'ridge strength, relative to the mean diagonal of the normal equations' }),
    ),
    calibration: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 10_000,
        default: C.calibration,
        description: 'concern inputs per module for scoring and re-fitting (as many tangling inputs from the other classes)',
      }),
    ),
  },
  {
    additionalProperties: false,
    description: 'make compact modules: channels cut physically to the budget and the rest re-fitted in closed form (no training)',
  },
);

export const DecompositionOptions = Type.Object(
  {
    samplesPerClass: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000, default: D.samplesPerClass, description: 'concern samples per class' })),
    tanglingRatio: Type.Optional(
      Type.Number({ minimum: 0, maximum: 100, default: D.tanglingRatio, description: '|U_c| / |S_c|, spread evenly over the other classes' }),
    ),
    tau: Type.Optional(
      Type.Number({ minimum: 0, exclusiveMaximum: 1, default: D.tau, description: 'a unit is kept when active on more than this fraction of the samples' }),
    ),
    maskPoint: Type.Optional(Type.Union([Type.Literal('post-activation'), Type.Literal('pre-activation')], { default: D.maskPoint })),
    backtrack: Type.Optional(Type.Union([Type.Literal('none'), Type.Literal('last-layer'), Type.Literal('input')], { default: D.backtrack })),
    delta: Type.Optional(Type.Number({ minimum: 0, maximum: 1e6, default: D.delta, description: 'MC-BLN weight threshold' })),
    confidentOnly: Type.Optional(Type.Boolean({ default: D.confidentOnly, description: 'use only samples the model classifies correctly' })),
    seed: Type.Optional(Type.Integer({ minimum: 0, maximum: 2 ** 31 - 1, default: D.seed })),
    compact: Type.Optional(CompactOptions),
  },
  { additionalProperties: false },
);
export type DecompositionOptionsT = Static<typeof DecompositionOptions>;

export const DecompositionRequest = Type.Object(
  {
    modelId: Type.String({ minLength: 1, maxLength: 100 }),
    datasetId: Type.String({ minLength: 1, maxLength: 100, description: 'where concern and tangling samples come from' }),
    evalDatasetId: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: 'held-out data for the metrics' })),
    classes: Type.Optional(Type.Array(Type.Integer({ minimum: 0, maximum: 100_000 }), { minItems: 1, maxItems: 10_000, uniqueItems: true })),
    options: Type.Optional(DecompositionOptions),
  },
  { additionalProperties: false },
);
export type DecompositionRequestT = Static<typeof DecompositionRequest>;

export const ModuleSummary = Type.Object({
  id: Type.String(),
  classIndex: Type.Integer(),
  className: Type.String(),
  keptFraction: Type.Number(),
  flopsFraction: Type.Number({ description: "the module's FLOPs as a fraction of the model's (1 for mask modules)" }),
  paramsFraction: Type.Number({ description: "the module's parameters as a fraction of the model's (1 for mask modules)" }),
});

const Cost = Type.Object({
  params: Type.Integer(),
  flops: Type.Number({ description: 'multiply-accumulates per input' }),
  sizeBytes: Type.Integer({ description: 'stored network (canonical format)' }),
});

const TopK = Type.Object(
  {
    top1: Type.Number(),
    top5: Type.Number(),
    perClass: Type.Optional(Type.Array(Type.Number(), { description: 'accuracy per true class of the model' })),
    classCounts: Type.Optional(ClassCounts),
    confusion: Type.Optional(Type.Array(Type.Array(Type.Integer()), { description: 'rows = true class, columns = predicted (model classes)' })),
  },
  { additionalProperties: true },
);

export const DecompositionMetrics = Type.Object(
  {
    model: Type.Optional(TopK),
    composed: Type.Optional(TopK),
    baseline: Type.Optional(
      Type.Object(TopK.properties, {
        additionalProperties: true,
        description:
          "modules of some classes (classes): the model restricted to those classes on the same images, which the modules' composition reproduces when no unit is masked",
      }),
    ),
    agreement: Type.Optional(Type.Number({ description: "fraction of scored images where the composition's top-1 equals the model's" })),
    jaccard: Type.Object({
      meanPairwise: Type.Number(),
      meanVsModel: Type.Number(),
      pairwise: Type.Optional(
        Type.Array(Type.Array(Type.Number()), {
          description: 'Jaccard index of every module pair, rows and columns in class order (as modules are listed); up to 100 modules',
        }),
      ),
      pairsSampled: Type.Optional(Type.Integer({ description: 'above 100 modules: meanPairwise is the mean over this many seeded random pairs' })),
    }),
    matricesOmitted: Type.Optional(
      Type.String({ description: 'set above 100 modules: the confusion and pairwise Jaccard matrices are then not recorded (per-class accuracy is)' }),
    ),
    energy: Type.Object({ seconds: Type.Number(), kWh: Type.Number(), co2eKg: Type.Number() }, { additionalProperties: true }),
  },
  { additionalProperties: true },
);

export const DecompositionView = Type.Object(
  {
    id: Type.String(),
    status: Type.String({ description: 'the job state: queued | active | completed | failed | cancelled' }),
    modelId: Type.String(),
    datasetId: Type.String(),
    evalDatasetId: Type.Optional(Type.String()),
    classes: Type.Optional(Type.Array(Type.Integer())),
    options: Type.Object({}, { additionalProperties: true }),
    jobId: Type.Optional(Type.String()),
    engineVersion: Type.Optional(Type.String()),
    modules: Type.Array(ModuleSummary),
    metrics: Type.Optional(DecompositionMetrics),
    error: Type.Optional(Type.Object({ title: Type.String(), detail: Type.String() }, { additionalProperties: true })),
    createdAt: Type.String({ format: 'date-time' }),
    finishedAt: Type.Optional(Type.String({ format: 'date-time' })),
  },
  { $id: 'Decomposition' },
);
export type DecompositionViewT = Static<typeof DecompositionView>;

export const ModuleView = Type.Object(
  {
    id: Type.String(),
    decompositionId: Type.String(),
    modelId: Type.String(),
    classIndex: Type.Integer(),
    className: Type.String(),
    keptFraction: Type.Number(),
    perLayer: Type.Array(Type.Object({ layer: Type.String(), units: Type.Integer(), kept: Type.Integer() })),
    oneVsRest: Type.Optional(Type.Object({ accuracy: Type.Number() })),
    flopsFraction: Type.Number({ description: "the module's FLOPs as a fraction of the model's (1 for mask modules)" }),
    paramsFraction: Type.Number({ description: "the module's parameters as a fraction of the model's (1 for mask modules)" }),
    compact: Type.Optional(
      Type.Object(
        {
          module: Cost,
          model: Cost,
          criterion: Type.String(),
          layers: Type.Array(Type.Object({ layer: Type.String(), channels: Type.Integer(), kept: Type.Integer() }), {
            description: 'output channels kept per Conv2D/Dense layer',
          }),
        },
        { description: 'compact modules: their own network beside the model (the mask module) they were cut from' },
      ),
    ),
    parentModuleId: Type.Optional(Type.String({ description: 'for versions made by continuous learning: the module it extends' })),
    createdAt: Type.String({ format: 'date-time' }),
  },
  { $id: 'Module' },
);
export type ModuleViewT = Static<typeof ModuleView>;

export const DecompositionList = ListOf(Type.Ref('Decomposition'));
export const DecompositionListQuery = Type.Object({ ...PageQuery, modelId: FilterId, datasetId: FilterId }, { additionalProperties: false });
export type DecompositionListQueryT = Static<typeof DecompositionListQuery>;

export const ModuleList = ListOf(Type.Ref('Module'));
export const ModuleListQuery = Type.Object(
  {
    ...PageQuery,
    decompositionId: FilterId,
    modelId: FilterId,
    classIndex: Type.Optional(Type.Integer({ minimum: 0, maximum: 100_000 })),
    className: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  },
  { additionalProperties: false },
);
export type ModuleListQueryT = Static<typeof ModuleListQuery>;
