import { z } from 'zod';
import { SIZE } from './size.js';

// The config file of `libipc run` (YAML or JSON), checked field by field: an unknown field, a wrong type or
// an out-of-range value is an error naming the file, line and field (see load-config.ts).

const NAME = /^[A-Za-z0-9._-]{1,63}$/;
const name = z.string().regex(NAME, { error: 'must be 1-63 characters from [A-Za-z0-9._-]' });
const port = z.number().int().min(1).max(65_535);
const ms = (min: number) => z.number().int().min(min).max(2 ** 31 - 1);
// YAML reads `PORT: 8080` as a number: numbers and booleans are taken as the strings they were written as.
const envValue = z.union([z.string(), z.number(), z.boolean()]).transform(String);

const backoff = z.strictObject({
  initialMs: ms(0).optional(),
  factor: z.number().min(1).max(100).optional(),
  maxMs: ms(0).optional(),
  jitter: z.number().min(0).max(1).optional(),
});

const policy = z.enum(['always', 'on-failure', 'never'], { error: "must be 'always', 'on-failure' or 'never'" });

export const restartSchema = z.union(
  [
    policy,
    z.strictObject({
      policy,
      backoff: backoff.optional(),
      minUptimeMs: ms(0).optional(),
      maxRestarts: z.number().int().min(0).optional(),
      windowMs: ms(1).optional(),
      stopExitCodes: z.array(z.number().int().min(0).max(255)).optional(),
    }),
  ],
  { error: "must be 'always', 'on-failure', 'never' or { policy, backoff?, minUptimeMs?, maxRestarts?, windowMs?, stopExitCodes? }" },
);

export const readinessSchema = z.union(
  [
    z.enum(['none', 'ready']),
    z.strictObject({ registry: name, domain: name.optional() }),
    z.strictObject({ tcp: z.number().int().min(1).max(65_535) }),
    z.strictObject({ http: z.string().regex(/^https?:\/\/\S+$/) }),
  ],
  { error: "must be 'none', 'ready', { registry: name, domain? }, { tcp: port } or { http: url }" },
);

const logsDir = z.strictObject({
  dir: z.string().min(1),
  maxBytes: z.number().int().min(1024).max(2 ** 40).optional(),
  keep: z.number().int().min(0).max(1000).optional(),
});
export const logsSchema = z.union([z.enum(['inherit', 'ignore']), z.string().min(1), logsDir], {
  error: "must be a folder, { dir, maxBytes?, keep? }, 'inherit' or 'ignore'",
});

// maxMemory: bytes, or a size with a unit ('300M', '1G', '512K'; see size.ts).
export const sizeSchema = z.union([z.number().int().min(1), z.string().regex(SIZE, { error: "must be bytes or a size like '512K', '300M', '1G'" })], {
  error: "must be bytes (a number) or a size like '512K', '300M', '1G'",
});

const paths = z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]);
// watch: true (the service's cwd), a path, paths, or { paths?, ignore?, debounceMs? }.
export const watchSchema = z.union(
  [z.boolean(), paths, z.strictObject({ paths: paths.optional(), ignore: z.union([z.string().min(1), z.array(z.string().min(1))]).optional(), debounceMs: ms(0).optional() })],
  { error: 'must be true, a path, a list of paths or { paths?, ignore?, debounceMs? }' },
);

export const serviceSchema = z.strictObject({
  name: name.optional(),
  command: z.union([z.string().min(1), z.array(z.string()).min(1)], { error: 'must be a non-empty string (or an array: command and its arguments)' }),
  args: z.array(z.union([z.string(), z.number()]).transform(String)).max(4096).optional(),
  env: z.record(z.string().regex(/^[^=\0]+$/), envValue).optional(),
  cwd: z.string().min(1).optional(),
  instances: z.number().int().min(1).max(10_000).optional(),
  restart: restartSchema.optional(),
  restartLimit: z.number().int().min(0).optional(),
  dependsOn: z.union([name, z.array(name)]).optional(),
  readiness: readinessSchema.optional(),
  startTimeoutMs: ms(1).optional(),
  stopTimeoutMs: ms(0).optional(),
  logs: logsSchema.optional(),
  maxMemory: sizeSchema.optional(),
  memoryGraceMs: ms(0).optional(),
  cronRestart: z.string().min(1).optional(),
  watch: watchSchema.optional(),
  /** TCP ports the instances share through one socket the supervisor opens (see ServiceSpec.listen). */
  listen: z
    .union([port, z.array(port).min(1).max(64)], { error: 'must be a TCP port (1-65535) or a list of them' })
    .optional(),
});

export const configSchema = z.strictObject({
  services: z.union([z.array(serviceSchema), z.record(z.string(), serviceSchema)], {
    error: 'must be a list of services (each with a name) or a map of name: service',
  }),
  env: z.record(z.string().regex(/^[^=\0]+$/), envValue).optional(),
  logs: logsSchema.optional(),
});

export type ServiceConfig = z.output<typeof serviceSchema>;
export type FileConfig = z.output<typeof configSchema>;
