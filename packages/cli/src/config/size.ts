// Sizes as people write them in configs: '512K', '300M', '1G' (also '300MB', '1.5G', lower case), powers of 1024 as PM2's max_memory_restart.

/** A size with a unit; the unit is required (a bare number in a config is a number of bytes). */
export const SIZE = /^\s*(\d+(?:\.\d+)?)\s*([KMG])(?:i?B)?\s*$/i;

const UNIT: Record<string, number> = { K: 1024, M: 1024 ** 2, G: 1024 ** 3 };

/** Bytes of a size string ('300M' → 314572800), or undefined when it is not one. */
export function parseSize(text: string): number | undefined {
  const m = SIZE.exec(text);
  if (!m) return undefined;
  return Math.round(Number(m[1]) * UNIT[m[2]!.toUpperCase()]!);
}
