export { main, type MainOptions } from './main.js';
export { loadConfig, loadConfigFile, daemonSpecs, type RunConfig, type LoadConfigOptions } from './config/load-config.js';
