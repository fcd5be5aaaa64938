// Preloaded (`node --require …/pm2-ready.cjs app.js`) into the apps of a PM2 ecosystem file that have
// `wait_ready`: PM2 apps say they are ready with `process.send('ready')` over PM2's IPC channel. Run by libipc
// there is no channel, so `process.send` is made to write READY to LIBIPC_READY_FD instead (@libipc/process ready()).
if (typeof process.send !== 'function' && process.env.LIBIPC_READY_FD !== undefined) {
  process.send = (message: unknown, ...rest: unknown[]): boolean => {
    // Loaded only when the app says something: the preload costs an app nothing until then.
    if (message === 'ready') (require('@libipc/process') as typeof import('@libipc/process')).ready();
    const callback = rest.find((a) => typeof a === 'function') as ((err: Error | null) => void) | undefined;
    if (callback) process.nextTick(callback, null);
    return true;
  };
}
