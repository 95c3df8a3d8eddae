import type { TidingsError } from '../errors.js';

/** A request refused before it reaches a library, with the headers that status asks for (Allow on 405, …). */
export interface Refusal {
  readonly error: TidingsError;
  readonly headers?: Readonly<Record<string, string>>;
}
