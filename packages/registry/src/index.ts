export { ServiceRegistry, type RegistryOptions, type RegisterOptions, type WaitForOptions, type WaitForDeathOptions } from './registry.js';
export type { ServiceEntry, RegistryChange, ChangeType } from './entry.js';
export { META_MAX_BYTES } from './layout.js';
export { inspectRegistry, type RegistrySnapshot, type InspectedEntry, type InspectedGroup } from './inspect.js';
