/** Where a command writes and what it knows of its terminal: the process's streams, or a test's. */
export interface Io {
  stdout: NodeJS.WritableStream & { isTTY?: boolean; columns?: number; rows?: number };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
  env: NodeJS.ProcessEnv;
  cwd: string;
}

export function processIo(): Io {
  return { stdout: process.stdout, stderr: process.stderr, env: process.env, cwd: process.cwd() };
}

/** Writes a line; false once the reader went away (EPIPE), so long outputs can stop early. */
export function writeLine(stream: Io['stdout'], line = ''): void {
  stream.write(`${line}\n`);
}
