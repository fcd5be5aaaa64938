import { closest, distance } from 'fastest-levenshtein';
import * as z from 'zod/mini';
import { describeValue } from './describe.js';
import { InvalidArgumentError } from './errors.js';

export { describeValue };

/**
 * The one options validator of libipc (every package uses it): an options argument is an object, `undefined`
 * or `null` (both mean "no options"); an option set to `undefined` or `null` means "use the default"; an
 * unknown key is refused with a "did you mean"; a value of the wrong type or out of range is refused naming
 * the option. Every refusal is ERR_LIBIPC_INVALID_ARGUMENT. The checks are zod schemas.
 */
/** A check of one option: a zod schema (structurally, so these types do not depend on zod's). */
export interface OptionSchema<T = unknown> {
  safeParse(value: unknown): { success: true; data: T } | { success: false; error: { issues: ReadonlyArray<{ message: string }> } };
  readonly description?: string;
}
export type OptionsShape = Record<string, OptionSchema>;
export type ParsedOptions<S extends OptionsShape> = { [K in keyof S]?: S[K] extends OptionSchema<infer T> ? T : never };

/** Longest time any libipc interval or timeout may be, in ms: Node's timers treat more as 1 ms. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

const knownKeys = new WeakMap<object, string[]>();

function isEmpty(value: object): boolean {
  for (const key in value) if (Object.prototype.hasOwnProperty.call(value, key)) return false;
  return true;
}

function suggestion(key: string, known: string[]): string {
  if (known.length === 0) return 'this call takes no options';
  const near = closest(key, known);
  const hint = distance(key.toLowerCase(), near.toLowerCase()) <= Math.max(2, Math.floor(near.length / 3)) ? `did you mean '${near}'? ` : '';
  return `${hint}known options: ${known.join(', ')}`;
}

/**
 * Checks an options argument against a shape of zod schemas (each optional: absent, undefined and null all
 * mean the default). Returns only the options that were given, parsed. `what` names the call in messages,
 * e.g. "ServiceRegistry options".
 */
export function parseOptions<S extends OptionsShape>(value: unknown, shape: S, what: string): ParsedOptions<S> {
  if (typeof what !== 'string') what = 'options';
  if (typeof shape !== 'object' || shape === null || !Object.values(shape).every((s) => typeof (s as OptionSchema)?.safeParse === 'function')) {
    throw new InvalidArgumentError(`${what}: the shape must be an object of option schemas (from option.* or zod)`);
  }
  if (value === undefined || value === null) return {};
  // Hot paths (send, recv) pass an empty object most of the time: no work then.
  if (typeof value === 'object' && isEmpty(value)) return {};
  let known = knownKeys.get(shape);
  if (known === undefined) knownKeys.set(shape, (known = Object.keys(shape)));
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new InvalidArgumentError(
      `${what} must be an object${known.length ? ` such as { ${known[0]}: … }` : ''}, got ${describeValue(value)}; pass options by name`,
    );
  }
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value)) {
    if (!Object.prototype.hasOwnProperty.call(shape, key)) {
      throw new InvalidArgumentError(`${what}: unknown option '${key.slice(0, 40)}'; ${suggestion(key, known)}`);
    }
  }
  for (const key of known) {
    const given = (value as Record<string, unknown>)[key];
    if (given === undefined || given === null) continue;
    const schema = shape[key]!;
    const r = schema.safeParse(given);
    if (!r.success) {
      const expected = schema.description ?? r.error.issues[0]?.message ?? 'valid';
      throw new InvalidArgumentError(`${what}: option '${key}' must be ${expected}, got ${describeValue(given)}`);
    }
    out[key] = r.data;
  }
  return out as ParsedOptions<S>;
}

/** A check with the description its error message shows ("must be <description>"). */
export class Check<T> implements OptionSchema<T> {
  constructor(
    readonly schema: { safeParse(value: unknown): { success: boolean; data?: unknown; error?: { issues: ReadonlyArray<{ message: string }> } } },
    readonly description: string,
  ) {}
  safeParse(value: unknown): ReturnType<OptionSchema<T>['safeParse']> {
    return this.schema.safeParse(value) as ReturnType<OptionSchema<T>['safeParse']>;
  }
  /** The same check with another description. */
  describe(description: string): Check<T> {
    return new Check<T>(this.schema, description);
  }
}

/** Schemas for the options libipc uses everywhere (zod/mini underneath), each described for its error message. */
export const option = {
  /** A whole number in [min, max]. */
  int: (min: number, max: number) =>
    new Check<number>(z.number().check(z.int(), z.gte(min), z.lte(max)), `a whole number from ${min} to ${max}`),
  /** A number in [min, max] (fractions allowed). */
  number: (min: number, max: number) => new Check<number>(z.number().check(z.gte(min), z.lte(max)), `a number from ${min} to ${max}`),
  /** A duration in ms in [min, max] (max at most MAX_TIMER_MS); with `infinite`, Infinity means "no limit". */
  ms: (min: number, max: number = MAX_TIMER_MS, opts: { infinite?: boolean } = {}) =>
    new Check<number>(
      z.custom<number>((v) => typeof v === 'number' && ((v >= min && v <= max) || (opts.infinite === true && v === Infinity))),
      `a duration in ms from ${min} to ${max}${opts.infinite ? ' (or Infinity)' : ''}`,
    ),
  /** One of a few strings. */
  oneOf: <const T extends readonly [string, ...string[]]>(...values: T) =>
    new Check<T[number]>(z.enum(values), `one of ${values.map((v) => `'${v}'`).join(', ')}`),
  boolean: () => new Check<boolean>(z.boolean(), 'true or false'),
  /** A string of at most maxLength characters. */
  string: (maxLength = 4096) => new Check<string>(z.string().check(z.maxLength(maxLength)), `a string of at most ${maxLength} characters`),
  signal: () => new Check<AbortSignal>(z.instanceof(AbortSignal), 'an AbortSignal (e.g. AbortSignal.timeout(ms) or controller.signal)'),
  /** Anything `check` accepts (it returns true), described as `description`. */
  custom: <T>(check: (v: unknown) => boolean, description: string) => new Check<T>(z.custom<T>(check), description),
};
