/**
 * Splits a command-line string into arguments as a POSIX shell would, without running one: blanks separate,
 * '…' keeps everything, "…" keeps everything but `\"` and `\\`, a backslash outside quotes escapes the next
 * character. No variables, globs or operators: `$HOME` stays `$HOME`. PM2's `args: '--port 80 --name "my app"'`.
 */
export function splitArgs(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let started = false;
  let quote: "'" | '"' | undefined;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (quote === "'") {
      if (ch === "'") quote = undefined;
      else cur += ch;
    } else if (quote === '"') {
      if (ch === '"') quote = undefined;
      else if (ch === '\\' && (line[i + 1] === '"' || line[i + 1] === '\\')) cur += line[++i];
      else cur += ch;
    } else if (ch === "'" || ch === '"') {
      quote = ch;
      started = true;
    } else if (ch === '\\' && i + 1 < line.length) {
      cur += line[++i];
      started = true;
    } else if (/\s/.test(ch)) {
      if (started) out.push(cur);
      cur = '';
      started = false;
    } else {
      cur += ch;
      started = true;
    }
  }
  // An unclosed quote runs to the end, as PM2's split would keep the text.
  if (started) out.push(cur);
  return out;
}
