// A stand-in for a data store: it "loads" for a moment, then serves until SIGTERM.
import { ready, stopOnSigterm } from './ready.mjs';

const keys = new Map();
stopOnSigterm('store');
setTimeout(() => {
  console.log(`store ready (pid ${process.pid})`);
  ready();
}, 200);
setInterval(() => keys.set(`k${keys.size}`, Date.now()), 1000);
