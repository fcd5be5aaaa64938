export { main, type MainOptions } from './main.js';
export { loadConfig, type RunConfig } from './config/load-config.js';
