import { defineConfig } from 'tsup';

// A private app: ESM executables only, run with plain `node` (the #! line makes them executable too).
export default defineConfig({
  entry: ['src/audio-host.ts', 'src/audio-service.ts'],
  format: ['esm'],
  sourcemap: true,
  clean: true,
  target: 'node20',
});
