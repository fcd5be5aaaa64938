import xxhash from 'xxhash-wasm';

/** The one hash placement uses: xxHash64 of a string's UTF-8 bytes. */
export interface Hasher {
  h64(input: string): bigint;
}

let loading: Promise<Hasher> | undefined;

/** xxhash-wasm compiles a small WebAssembly module once per process; later calls share it. */
export function loadHasher(): Promise<Hasher> {
  loading ??= xxhash().then((api) => ({ h64: (input: string) => api.h64(input) }));
  return loading;
}
