/**
 * Engine errors are plain: a stable code and a message. The job layer maps them to problems
 * (all are the caller's input being unusable: HTTP 422) and does not retry them.
 */
export type EngineErrorCode =
  | 'UNSUPPORTED_LAYER'
  | 'MULTIPLE_INPUTS'
  | 'MULTIPLE_OUTPUTS'
  | 'NOT_A_CLASSIFIER'
  | 'INVALID_MODEL'
  | 'SHAPE_MISMATCH'
  | 'LABEL_OUT_OF_RANGE';

export class EngineError extends Error {
  constructor(
    readonly code: EngineErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'EngineError';
  }
}
