import { InvalidArgumentError } from '@libipc/shm';
import { Cron } from 'croner';

/**
 * cronRestart's schedule, pure: checking an expression and its next fire after a time (croner parses;
 * 5 fields, or 6 with seconds first; nicknames like '@daily'). The timer lives in triggers.ts.
 */

function parse(expr: string): Cron {
  // paused: croner only parses here; it never schedules anything of its own.
  return new Cron(expr, { mode: '5-or-6-parts', paused: true });
}

/** Throws ERR_LIBIPC_INVALID_ARGUMENT naming `field` when `expr` is not a cron expression that ever fires. */
export function checkCron(expr: string, field: string): void {
  let next: Date | null;
  try {
    next = parse(expr).nextRun(new Date());
  } catch (err) {
    const why = (err as Error).message.replace(/^CronPattern: /, '');
    throw new InvalidArgumentError(
      `${field}: '${expr}' is not a cron expression (${why}); use 5 fields 'min hour day month weekday' or 6 with seconds first, e.g. '0 3 * * *'`,
    );
  }
  if (!next) throw new InvalidArgumentError(`${field}: '${expr}' never fires (no such date); check the day and month fields`);
}

/** The first time strictly after `from` at which `expr` fires, or undefined when it never does again. */
export function nextCronFire(expr: string, from: Date): Date | undefined {
  return parse(expr).nextRun(from) ?? undefined;
}
